'use strict';

// Presence data (SPEC §12) through Socket.IO: what the server's `presenceData` decides is
// stored, `members` in acknowledgements and `room:participants`, `room:update`, and payloads
// that must be refused without harm. Runs against any redis-server (REDIS_SERVER) that loads
// the module (PRESENCE_MODULE), like the other tests.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./support/redis-server');
const { SCRIPT_ENGINE } = require('./support/engine');
const { startSocketServer } = require('./support/socket-server');
const { TestClient } = require('./support/test-client');
const { waitFor } = require('./support/wait');

const STATUSES = new Set(['here', 'away']);

/**
 * The application's rule in these tests: the name comes from the handshake (its session),
 * only the status from the client.
 */
function presenceData(socket, requested) {
  const status = requested && typeof requested === 'object' && STATUSES.has(requested.status) ? requested.status : 'here';
  return { name: socket.handshake.auth.name, status };
}

describe('presence data', () => {
  let redis;
  let admin;
  let server;
  let plain;
  const clients = [];

  const connect = async (target, user, name) => {
    const client = new TestClient(target.url, { auth: { user, name } });
    clients.push(client);
    await client.connected();
    return client;
  };
  const send = (client, event, ...args) => client.socket.timeout(5000).emitWithAck(event, ...args);
  const dataKey = (roomId, userId) => admin.sendCommand(['GET', `room:presence-data:${roomId}:${userId}`]);
  const memberOf = (event, userId) => event && event.members.find((member) => member.userId === userId);

  before(async () => {
    redis = await startRedis({ staleAfter: 30, sweepIntervalMs: 100 });
    admin = await redis.client();
    server = await startSocketServer(redis.url, { presenceData, maxDataBytes: 4096 });
    plain = await startSocketServer(redis.url);
  });

  after(async () => {
    for (const client of clients) client.close();
    if (server) await server.close();
    if (plain) await plain.close();
    if (redis) await redis.stop();
  });

  it('stores what presenceData decides: a client cannot claim another name; members in the ack', async () => {
    const ann = await connect(server, 'u-ann', 'Ann');
    const ack = await ann.join('d-claim', { data: { name: 'Mallory', role: 'admin', status: 'away' } });
    assert.deepEqual(ack, {
      ok: true,
      roomId: 'd-claim',
      users: ['u-ann'],
      members: [{ userId: 'u-ann', data: { name: 'Ann', status: 'away' } }],
      count: 1,
      truncated: false,
    });
    assert.deepEqual(JSON.parse(await dataKey('d-claim', 'u-ann')), { name: 'Ann', status: 'away' });

    const update = await ann.presence.update('d-claim', { name: 'Mallory', status: 'here' });
    assert.deepEqual(update, { ok: true, data: { name: 'Ann', status: 'here' } });
    assert.deepEqual(JSON.parse(await dataKey('d-claim', 'u-ann')), { name: 'Ann', status: 'here' });
  });

  it('stores no client-supplied data by default: members carry null, an update is invalid-data', async () => {
    const bea = await connect(plain, 'u-bea', 'Bea');
    const ack = await bea.join('d-default', { data: { name: 'Bea', status: 'away' } });
    assert.deepEqual(ack.ok && ack.members, [{ userId: 'u-bea', data: null }]);
    assert.equal(await dataKey('d-default', 'u-bea'), null);
    assert.deepEqual(await bea.presence.update('d-default', { status: 'away' }), { ok: false, error: 'invalid-data' });
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'd-default']), ['u-bea']);
  });

  it('an update reaches the room once, through the coalesced room:participants', async () => {
    const cal = await connect(server, 'u-cal', 'Cal');
    const dee = await connect(server, 'u-dee', 'Dee');
    await cal.join('d-update');
    await dee.join('d-update');
    await dee.waitForUsers('d-update', ['u-cal', 'u-dee']);

    assert.deepEqual(await cal.presence.update('d-update', { status: 'away' }), { ok: true, data: { name: 'Cal', status: 'away' } });
    const away = (event) => memberOf(event, 'u-cal')?.data.status === 'away';
    const seen = await waitFor(() => dee.participants.find(away), {
      message: 'the update in room:participants',
    });
    assert.deepEqual(seen.members, [
      { userId: 'u-cal', data: { name: 'Cal', status: 'away' } },
      { userId: 'u-dee', data: { name: 'Dee', status: 'here' } },
    ]);
    assert.deepEqual(seen.users, ['u-cal', 'u-dee'], 'the users array stays');
    // A later change, sent in a later interval: until then, the update was sent once.
    const eve = await connect(server, 'u-eve', 'Eve');
    await eve.join('d-update');
    await dee.waitForUsers('d-update', ['u-cal', 'u-dee', 'u-eve']);
    const between = dee.participants.filter((event) => away(event) && !event.users.includes('u-eve'));
    assert.equal(between.length, 1, `one room:participants for one update (got ${between.length})`);

    // The same data again changes nothing and is acknowledged.
    assert.deepEqual(await cal.presence.update('d-update', { status: 'away' }), { ok: true, data: { name: 'Cal', status: 'away' } });
  });

  it('an update storm is a few coalesced sends, ending with the last data', async () => {
    const fay = await connect(server, 'u-fay', 'Fay');
    const gus = await connect(server, 'u-gus', 'Gus');
    await fay.join('d-storm');
    await gus.join('d-storm');
    await gus.waitForUsers('d-storm', ['u-fay', 'u-gus']);
    await waitFor(() => gus.participants.some((event) => !event.ack), { message: 'a room:participants' });
    await gus.waitForQuiet(300);
    const mark = gus.participants.length;
    const updates = 200;
    const acks = await Promise.all(
      Array.from({ length: updates }, (_, i) => fay.presence.update('d-storm', { status: i % 2 === 0 ? 'away' : 'here' })),
    );
    assert.ok(
      acks.every((ack) => ack.ok),
      'every update acknowledged',
    );
    await waitFor(() => memberOf(gus.lastParticipants('d-storm'), 'u-fay')?.data.status === 'here', { message: 'the last update' });
    await gus.waitForQuiet(300);
    const sends = gus.participants.length - mark;
    console.log(`# ${updates} updates → ${sends} room:participants`);
    assert.ok(sends >= 1 && sends < updates / 4, `the storm was coalesced (${sends} sends for ${updates} updates)`);
  });

  it('refuses data that is not one JSON value, and harmful payloads, with invalid-data, and writes nothing', async () => {
    const hal = await connect(server, 'u-hal', 'Hal');
    await hal.join('d-bad');
    const before = await dataKey('d-bad', 'u-hal');
    let deep = { status: 'away' };
    for (let i = 0; i < 40; i += 1) deep = { deep };
    const cases = [
      ['binary', Buffer.from('abc')],
      ['nested too deep', deep],
      ['__proto__ key', JSON.parse('{"__proto__": {"polluted": true}}')],
      ['constructor key', { constructor: { prototype: { polluted: true } } }],
      ['prototype key deep inside', { a: [{ prototype: 1 }] }],
    ];
    for (const [what, data] of cases) {
      assert.deepEqual(await send(hal, 'room:update', { roomId: 'd-bad', data }), { ok: false, error: 'invalid-data' }, `update: ${what}`);
      assert.deepEqual(await send(hal, 'room:join', { roomId: 'd-bad-join', data }), { ok: false, error: 'invalid-data' }, `join: ${what}`);
    }
    assert.deepEqual(await send(hal, 'room:update', { roomId: 'd-bad' }), { ok: false, error: 'invalid-data' }, 'an update without data');
    assert.equal(/** @type {any} */ ({}).polluted, undefined, 'no prototype polluted');
    assert.equal(await dataKey('d-bad', 'u-hal'), before);
    assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', 'd-bad-join'])), 0);
  });

  it('answers data-too-large for data over maxDataBytes, and for what the module refuses', async () => {
    const ivy = await connect(server, 'u-ivy', 'Ivy');
    await ivy.join('d-large');
    const huge = { status: 'x'.repeat(200000) };
    assert.deepEqual(await send(ivy, 'room:update', { roomId: 'd-large', data: huge }), { ok: false, error: 'data-too-large' });
    assert.deepEqual(await send(ivy, 'room:join', { roomId: 'd-large-join', data: huge }), { ok: false, error: 'data-too-large' });
    const many = Array.from({ length: 5000 }, () => 0);
    assert.deepEqual(await send(ivy, 'room:update', { roomId: 'd-large', data: many }), { ok: false, error: 'data-too-large' });

    // Within this server's maxDataBytes (4096) but over the module's presence.max-data (1024 by
    // default). The script engine has no limit of the server's own: the app server's is the one.
    const wide = await startSocketServer(redis.url, { presenceData: (_socket, requested) => requested, maxDataBytes: 4096 });
    try {
      const jon = await connect(wide, 'u-jon', 'Jon');
      if (SCRIPT_ENGINE) {
        assert.equal((await jon.join('d-large', { data: { bio: 'x'.repeat(2000) } })).ok, true);
        assert.equal(JSON.parse(await dataKey('d-large', 'u-jon')).bio.length, 2000);
      } else {
        assert.deepEqual(await jon.join('d-large', { data: { bio: 'x'.repeat(2000) } }), { ok: false, error: 'data-too-large' });
        assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', 'd-large'])), 1, 'the refused join wrote nothing');
        assert.equal((await jon.join('d-large', { data: { bio: 'short' } })).ok, true);
        assert.deepEqual(await jon.presence.update('d-large', { bio: 'y'.repeat(2000) }), { ok: false, error: 'data-too-large' });
        assert.deepEqual(JSON.parse(await dataKey('d-large', 'u-jon')), { bio: 'short' });
      }
      jon.close();
    } finally {
      await wide.close();
    }
  });

  it('a raw payload nested 100000 deep is refused and the server keeps serving', async () => {
    const kim = await connect(server, 'u-kim', 'Kim');
    await kim.join('d-raw');
    const depth = 100000;
    const packet = `2["room:update",{"roomId":"d-raw","data":${'['.repeat(depth)}${']'.repeat(depth)}}]`;
    kim.socket.io.engine.write(packet);
    assert.deepEqual(await kim.presence.update('d-raw', { status: 'away' }), { ok: true, data: { name: 'Kim', status: 'away' } });
  });

  it('an update of a room not held is not-present, with one force-leave', async () => {
    const lea = await connect(server, 'u-lea', 'Lea');
    assert.deepEqual(await send(lea, 'room:update', { roomId: 'd-absent', data: { status: 'away' } }), { ok: false, error: 'not-present' });
    await waitFor(() => lea.rawForceLeaves.length === 1, { message: 'one room:force-leave' });
    assert.equal(lea.rawForceLeaves[0].reason, 'not-present');

    await lea.join('d-gone');
    await admin.sendCommand(['DEL', 'room:presence:d-gone:u-lea']);
    await lea.waitForForceLeave('d-gone');
    assert.deepEqual(await send(lea, 'room:update', { roomId: 'd-gone', data: { status: 'away' } }), { ok: false, error: 'not-present' });
    assert.equal(await dataKey('d-gone', 'u-lea'), null, 'no data without its presence');
  });

  it('keeps the data through a re-read after the pub/sub connection came back', async () => {
    const max = await connect(server, 'u-max', 'Max');
    await max.join('d-resync', { data: { status: 'away' } });
    await max.waitForQuiet(300);
    const mark = max.participants.length;
    await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    const event = await waitFor(() => max.participants.slice(mark).at(-1), {
      timeoutMs: 15000,
      message: 'room:participants after the re-read',
    });
    assert.deepEqual(event.members, [{ userId: 'u-max', data: { name: 'Max', status: 'away' } }]);
    assert.deepEqual(max.rawForceLeaves, []);
  });

  it('checks the options', async () => {
    const { attachPresence } = require('../src/server');
    const io = /** @type {any} */ ({});
    const base = { redis: admin, getUserId: () => 'u' };
    await assert.rejects(attachPresence(io, { ...base, presenceData: 'yes' }), {
      name: 'TypeError',
      message: 'attachPresence: options.presenceData must be a function (got "yes")',
    });
    await assert.rejects(attachPresence(io, { ...base, maxDataBytes: 0 }), {
      name: 'TypeError',
      message: 'attachPresence: options.maxDataBytes must be an integer from 1 to 65536 (got 0)',
    });
  });
});
