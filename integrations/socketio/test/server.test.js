'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./support/redis-server');
const { startSocketServer } = require('./support/socket-server');
const { TestClient } = require('./support/test-client');
const { waitFor } = require('./support/wait');
const { Adapter, SessionAwareAdapter } = require('socket.io-adapter');
const { presenceChannel } = require('../src/server');
const { SCRIPT_ENGINE } = require('./support/engine');

const STALE_AFTER_S = 2;

describe('presence on one Socket.IO server', () => {
  let redis;
  let admin;
  let server;
  const clients = [];

  const connect = async (user, options = {}) => {
    const client = new TestClient(server.url, { auth: { user }, ...options });
    clients.push(client);
    await client.connected();
    return client;
  };
  const send = (client, event, ...args) => client.socket.timeout(5000).emitWithAck(event, ...args);
  const presenceKeys = async () => (await admin.sendCommand(['KEYS', 'room:presence:*'])).sort();
  const count = async (roomId) => Number(await admin.sendCommand(['PRESENCE.COUNT', roomId]));
  /** The socket of a client's presence keys: this server's node and the socket id. */
  const held = (client) => `${server.presence.nodeId}/${client.socket.id}`;

  before(async () => {
    redis = await startRedis({ staleAfter: STALE_AFTER_S, sweepIntervalMs: 100 });
    admin = await redis.client();
    server = await startSocketServer(redis.url);
  });

  after(async () => {
    for (const client of clients) client.close();
    if (server) await server.close();
    if (redis) await redis.stop();
  });

  it('joins, lists, heartbeats and leaves', async () => {
    const alice = await connect('alice');
    const bob = await connect('bob');
    assert.deepEqual(await alice.presence.join('r-basic'), {
      ok: true,
      roomId: 'r-basic',
      users: ['alice'],
      members: [{ userId: 'alice', data: null }],
      count: 1,
      truncated: false,
    });
    assert.deepEqual(await bob.presence.join('r-basic'), {
      ok: true,
      roomId: 'r-basic',
      users: ['alice', 'bob'],
      members: [
        { userId: 'alice', data: null },
        { userId: 'bob', data: null },
      ],
      count: 2,
      truncated: false,
    });
    await alice.waitForUsers('r-basic', ['alice', 'bob']);
    assert.deepEqual(await send(bob, 'room:heartbeat', { roomId: 'r-basic' }), { ok: true });
    assert.deepEqual(await bob.presence.leave('r-basic'), { ok: true });
    await alice.waitForUsers('r-basic', ['alice']);
    assert.equal(await count('r-basic'), 1);
    assert.deepEqual(await bob.presence.leave('r-basic'), { ok: false, error: 'not-present' });
    assert.deepEqual(alice.rawForceLeaves, []);
    assert.deepEqual(bob.rawForceLeaves, []);
  });

  it('answers bad payloads with an error code and writes nothing', async () => {
    const mallory = await connect('mallory');
    const before = await presenceKeys();
    const cases = [
      [['room:join', { roomId: 'a:b' }], 'invalid-room'],
      [['room:join', { roomId: '' }], 'invalid-room'],
      [['room:join', { roomId: 'x'.repeat(129) }], 'invalid-room'],
      [['room:join', { roomId: 'x'.repeat(50000) }], 'invalid-room'],
      [['room:join', { roomId: 42 }], 'invalid-room'],
      [['room:join', {}], 'invalid-room'],
      [['room:join', 'lobby'], 'invalid-payload'],
      [['room:join', null], 'invalid-payload'],
      [['room:join', ['lobby']], 'invalid-payload'],
      [['room:join', Buffer.from('lobby')], 'invalid-payload'],
      [['room:join', { roomId: 'lobby' }, 'extra'], 'invalid-payload'],
      [['room:heartbeat', { roomId: '*' }], 'invalid-room'],
      [['room:leave', { roomId: 'a b' }], 'invalid-room'],
    ];
    for (const [args, error] of cases) {
      assert.deepEqual(await send(mallory, ...args), { ok: false, error }, JSON.stringify(args).slice(0, 80));
    }
    assert.deepEqual(await presenceKeys(), before);
    assert.equal(mallory.socket.connected, true);
  });

  it('takes the user from the handshake, never from the payload', async () => {
    const victim = await connect('victim');
    await victim.presence.join('r-spoof');
    const mallory = await connect('mallory2');
    const ack = await send(mallory, 'room:join', { roomId: 'r-spoof', userId: 'victim', user: 'victim' });
    assert.deepEqual(ack, {
      ok: true,
      roomId: 'r-spoof',
      users: ['mallory2', 'victim'],
      members: [
        { userId: 'mallory2', data: null },
        { userId: 'victim', data: null },
      ],
      count: 2,
      truncated: false,
    });
    assert.deepEqual(await send(mallory, 'room:leave', { roomId: 'r-spoof', userId: 'victim' }), { ok: true });
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-spoof', 'WITHSOCKETS']), ['victim', held(victim)]);
    assert.deepEqual(victim.rawForceLeaves, []);
  });

  it('refuses requests of a socket without a valid user id', async () => {
    const anonymous = await connect('not:an:id');
    const before = await presenceKeys();
    assert.deepEqual(await send(anonymous, 'room:join', { roomId: 'r-anon' }), { ok: false, error: 'unauthorized' });
    assert.deepEqual(await send(anonymous, 'room:heartbeat', { roomId: 'r-anon' }), { ok: false, error: 'unauthorized' });
    assert.deepEqual(await presenceKeys(), before);
  });

  it('answers a heartbeat of a room not held with not-present and one force-leave', async () => {
    const carol = await connect('carol');
    assert.deepEqual(await send(carol, 'room:heartbeat', { roomId: 'r-never' }), { ok: false, error: 'not-present' });
    assert.deepEqual(await send(carol, 'room:heartbeat', { roomId: 'r-never' }), { ok: false, error: 'not-present' });
    await waitFor(() => carol.rawForceLeaves.length === 1, { message: 'one force-leave' });
    assert.equal(carol.rawForceLeaves[0].reason, 'not-present');
    assert.equal(await count('r-never'), 0);
  });

  // The module sees a raw DEL as it happens (`deleted`); the script engine finds it when its
  // sweep reaches the presence, once its heartbeats would have stopped counting (`stale`).
  it('force-leaves a socket whose key was deleted, once, with reason deleted (stale on the script engine)', async () => {
    const dave = await connect('dave', { heartbeatIntervalMs: 60000 });
    const erin = await connect('erin');
    await dave.presence.join('r-del');
    await erin.presence.join('r-del');
    assert.equal(Number(await admin.sendCommand(['DEL', 'room:presence:r-del:dave'])), 1);
    const event = await dave.waitForForceLeave('r-del');
    assert.equal(event.reason, SCRIPT_ENGINE ? 'stale' : 'deleted');
    await erin.waitForUsers('r-del', ['erin']);
    assert.deepEqual(await send(dave, 'room:heartbeat', { roomId: 'r-del' }), { ok: false, error: 'not-present' });
    assert.equal(dave.rawForceLeaves.length, 1);
    assert.deepEqual(dave.presence.rooms(), []);
    assert.deepEqual(erin.rawForceLeaves, []);
  });

  it('replaces the socket of a user who joins again from another socket', async () => {
    // No heartbeat of the first socket's: one that reached the server before the event of the
    // second join would be answered not-present first (a slow event is no bug).
    const first = await connect('frank', { heartbeatIntervalMs: 60000 });
    const second = await connect('frank');
    await first.presence.join('r-replace');
    assert.equal((await second.presence.join('r-replace')).count, 1);
    assert.equal((await first.waitForForceLeave('r-replace')).reason, 'replaced');
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-replace', 'WITHSOCKETS']), ['frank', held(second)]);
    assert.deepEqual(second.rawForceLeaves, []);
  });

  it('force-leaves a socket that stops heartbeating, within stale-after', async () => {
    const quiet = await connect('quiet', { heartbeatIntervalMs: 60000 });
    const loud = await connect('loud', { heartbeatIntervalMs: 300 });
    const joinedAt = Date.now();
    await quiet.presence.join('r-stale');
    await loud.presence.join('r-stale');
    const event = await quiet.waitForForceLeave('r-stale', (STALE_AFTER_S + 30) * 1000);
    assert.equal(event.reason, 'stale');
    // Never before stale-after (a lower bound: a loaded machine only makes it later).
    assert.ok(event.at - joinedAt >= STALE_AFTER_S * 1000 - 200, `force-left after ${event.at - joinedAt} ms`);
    await loud.waitForUsers('r-stale', ['loud']);
    assert.deepEqual(loud.rawForceLeaves, []);
  });

  it('force-leaves with reason reset on FLUSHDB', async () => {
    const gina = await connect('gina', { heartbeatIntervalMs: 60000 });
    await gina.presence.join('r-flush');
    await admin.sendCommand(['FLUSHDB']);
    assert.equal((await gina.waitForForceLeave('r-flush')).reason, 'reset');
    assert.equal(gina.rawForceLeaves.length, 1);
  });

  it('answers internal when Redis refuses the command, and writes nothing', async () => {
    await admin.sendCommand(['HSET', 'room:presence:r-wrong:zed', 'field', 'value']);
    const zed = await connect('zed');
    assert.deepEqual(await send(zed, 'room:join', { roomId: 'r-wrong' }), { ok: false, error: 'internal' });
    assert.equal(await admin.sendCommand(['TYPE', 'room:presence:r-wrong:zed']), 'hash');
    assert.equal(await count('r-wrong'), 0);
    assert.ok(server.warnings.some((line) => line.includes('room:join r-wrong failed')));
  });

  it('leaves at once when a socket disconnects', async () => {
    const henry = await connect('henry');
    const ivan = await connect('ivan');
    await henry.presence.join('r-bye');
    await ivan.presence.join('r-bye');
    henry.close();
    await ivan.waitForUsers('r-bye', ['ivan']);
    assert.equal(await count('r-bye'), 1);
  });
});

describe('participants broadcasts', () => {
  let redis;
  let server;
  const clients = [];

  before(async () => {
    redis = await startRedis({ staleAfter: 30 });
    server = await startSocketServer(redis.url, { participantsIntervalMs: 400, maxUsers: 3 });
  });

  after(async () => {
    for (const client of clients) client.close();
    if (server) await server.close();
    if (redis) await redis.stop();
  });

  it('are coalesced per room, cut to maxUsers with truncated, with the exact count', async (t) => {
    // The server's sends of the room's room:participants, with their times: the coalescing is
    // judged where it happens, since a loaded machine can deliver two sends close together.
    const sends = [];
    const adapter = server.io.of('/').adapter;
    const broadcast = adapter.broadcast.bind(adapter);
    adapter.broadcast = (packet, opts) => {
      const [event, payload] = packet.data ?? [];
      if (event === 'room:participants' && payload.roomId === 'r-storm') sends.push({ at: Date.now(), count: payload.count });
      return broadcast(packet, opts);
    };
    const observer = new TestClient(server.url, { auth: { user: 'aaa-observer' } });
    clients.push(observer);
    await observer.connected();
    assert.deepEqual(await observer.presence.join('r-storm'), {
      ok: true,
      roomId: 'r-storm',
      users: ['aaa-observer'],
      members: [{ userId: 'aaa-observer', data: null }],
      count: 1,
      truncated: false,
    });
    const crowd = Array.from(
      { length: 12 },
      (_, i) => new TestClient(server.url, { auth: { user: `user-${String(i).padStart(2, '0')}` } }),
    );
    clients.push(...crowd);
    await Promise.all(crowd.map((client) => client.connected()));
    // Two waves: the second joins right after the first wave's list was sent, so its changes
    // fall within the interval and go out together at its end.
    const firstWave = await Promise.all(crowd.slice(0, 6).map((client) => client.presence.join('r-storm')));
    await waitFor(() => observer.lastParticipants('r-storm')?.count === 7, { message: 'count 7' });
    const secondWave = await Promise.all(crowd.slice(6).map((client) => client.presence.join('r-storm')));
    const acks = [...firstWave, ...secondWave];
    assert.ok(acks.every((ack) => ack.ok && ack.users.length <= 3 && ack.count >= 2));
    const last = await waitFor(
      () => {
        const event = observer.lastParticipants('r-storm');
        return event && event.count === 13 ? event : null;
      },
      { message: 'count 13' },
    );
    assert.deepEqual(last.users, ['aaa-observer', 'user-00', 'user-01']);
    assert.equal(last.truncated, true);
    const gaps = sends.slice(1).map((send, i) => send.at - sends[i].at);
    t.diagnostic(`${sends.length} sends of room:participants for 12 joins in two waves, ${gaps.join(', ')} ms apart`);
    assert.ok(sends.length >= 2, `${sends.length} sends for 12 joins`);
    // Timers fire no earlier than asked; a loaded machine only makes the gaps longer.
    assert.ok(
      gaps.every((gap) => gap >= 400 - 2),
      `${sends.length} sends for 12 joins, at least 400 ms apart: ${gaps.join(', ')} ms`,
    );
    adapter.broadcast = broadcast;
  });
});

describe('resilience', () => {
  it('force-leaves with reason reset when the pub/sub connection comes back to an empty Redis', async () => {
    const redis = await startRedis({ staleAfter: 30 });
    const server = await startSocketServer(redis.url);
    const jack = new TestClient(server.url, { auth: { user: 'jack' }, heartbeatIntervalMs: 60000 });
    try {
      await jack.connected();
      await jack.presence.join('r-restart');
      await redis.restart();
      const event = await jack.waitForForceLeave('r-restart', 15000);
      assert.equal(event.reason, 'reset');
      assert.equal(jack.rawForceLeaves.length, 1);
    } finally {
      jack.close();
      await server.close();
      await redis.stop();
    }
  });

  it('takes a socket restored by connection state recovery out of its presence channels', async () => {
    // An adapter that restores sessions without being Socket.IO's SessionAwareAdapter, as those
    // of other packages: attachPresence cannot tell, so the connection handler deals with it.
    class RestoringAdapter extends Adapter {
      constructor(nsp) {
        super(nsp);
        this.sessions = new Map();
        this.packets = [];
        this.maxDisconnectionDuration = 60000;
      }
    }
    for (const method of ['persistSession', 'restoreSession', 'broadcast']) {
      RestoringAdapter.prototype[method] = SessionAwareAdapter.prototype[method];
    }
    const redis = await startRedis({ staleAfter: 30 });
    const server = await startSocketServer(redis.url, {}, { connectionStateRecovery: {}, adapter: RestoringAdapter });
    const lee = new TestClient(server.url, { auth: { user: 'lee' }, heartbeatIntervalMs: 60000 });
    const max = new TestClient(server.url, { auth: { user: 'max' } });
    try {
      await lee.connected();
      await max.connected();
      await lee.join('r-recovered');
      await max.join('r-recovered');
      // A broadcast carries the offset the client recovers from.
      await lee.waitForUsers('r-recovered', ['lee', 'max']);
      lee.socket.io.engine.close();
      const event = await lee.waitForForceLeave('r-recovered');
      assert.equal(lee.socket.recovered, true);
      assert.equal(event.reason, 'not-present');
      assert.deepEqual([...server.io.of('/').adapter.rooms.get(presenceChannel('r-recovered'))], [max.socket.id]);
      assert.deepEqual(
        server.warnings.filter((line) => line.includes('connection state recovery')),
        ['presence: a socket was restored by connection state recovery, which must stay off; it was taken out of its presence channels'],
      );
    } finally {
      lee.close();
      max.close();
      await server.close();
      await redis.stop();
    }
  });

  it('answers unavailable while Redis is down', async () => {
    const redis = await startRedis({ staleAfter: 30 });
    const server = await startSocketServer(redis.url);
    const kim = new TestClient(server.url, { auth: { user: 'kim' } });
    try {
      await kim.connected();
      await redis.stop();
      await waitFor(() => !server.redis.isReady, { message: 'the client to notice' });
      // The server's own answer (the client's ack timeout would say `timeout`).
      assert.deepEqual(await kim.join('r-down'), { ok: false, error: 'unavailable' });
    } finally {
      kim.close();
      await server.close();
      await redis.stop();
    }
  });

  it('on close() leaves every local presence and refuses joins, heartbeats and connections', async () => {
    const redis = await startRedis({ staleAfter: 30 });
    const admin = await redis.client();
    const closing = await startSocketServer(redis.url);
    const staying = await startSocketServer(redis.url);
    const kate = new TestClient(closing.url, { auth: { user: 'kate' } });
    const liam = new TestClient(staying.url, { auth: { user: 'liam' } });
    try {
      await Promise.all([kate.connected(), liam.connected()]);
      await kate.presence.join('r-close');
      assert.deepEqual((await liam.presence.join('r-close')).users, ['kate', 'liam']);
      await closing.presence.close();
      assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-close']), ['liam']);
      await liam.waitForUsers('r-close', ['liam']);
      const send = (event) => kate.socket.timeout(5000).emitWithAck(event, { roomId: 'r-close' });
      assert.deepEqual(await send('room:join'), { ok: false, error: 'shutting-down' });
      assert.deepEqual(await send('room:heartbeat'), { ok: false, error: 'shutting-down' });
      assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-close']), ['liam']);
      const late = new TestClient(closing.url, { auth: { user: 'late' }, socketOptions: { reconnection: false } });
      await assert.rejects(late.connected(), /shutting-down/);
      late.close();
    } finally {
      kate.close();
      liam.close();
      await closing.close();
      await staying.close();
      await redis.stop();
    }
  });

  it('closes the connection of a payload over maxHttpBufferSize and keeps serving', async () => {
    const redis = await startRedis({ staleAfter: 30 });
    const admin = await redis.client();
    const server = await startSocketServer(redis.url, {}, { maxHttpBufferSize: 10000 });
    const big = new TestClient(server.url, { auth: { user: 'big' }, socketOptions: { reconnection: false } });
    const next = new TestClient(server.url, { auth: { user: 'next' } });
    try {
      await big.connected();
      const disconnectPromise = new Promise((resolve) => big.socket.once('disconnect', resolve));
      big.socket.emit('room:join', { roomId: 'r', padding: 'x'.repeat(20000) });
      assert.match(await disconnectPromise, /transport (close|error)/);
      assert.deepEqual(await admin.sendCommand(['KEYS', 'room:presence:*']), []);
      await next.connected();
      assert.equal((await next.presence.join('r-after')).ok, true);
    } finally {
      big.close();
      next.close();
      await server.close();
      await redis.stop();
    }
  });
});
