'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startRedis, waitFor, SCRIPT_ENGINE } = require('./support/shared');
const { startDemo } = require('./support/demo-server');

const STALE_AFTER_S = 3;
const PARTICIPANTS_INTERVAL_MS = 250;
const ROOM = 'stage';

/** Waits until none of `clients` has received a room:participants for a few intervals. */
function settled(clients) {
  const quietMs = 3 * PARTICIPANTS_INTERVAL_MS;
  return waitFor(
    () => clients.every((client) => {
      const last = client.participants.filter((event) => !event.ack).at(-1);
      return !last || Date.now() - last.at >= quietMs;
    }),
    { timeoutMs: 30000, message: 'no more room:participants' },
  );
}

test('two servers behind the Redis adapter: one is killed, the other sees its users leave, no event twice', async (t) => {
  const redis = await startRedis({ staleAfter: STALE_AFTER_S, sweepIntervalMs: 100 });
  const env = { PING_INTERVAL_MS: 1000, PING_TIMEOUT_MS: 1000, PARTICIPANTS_INTERVAL_MS };
  const servers = [];
  const clients = [];
  try {
    const admin = await redis.client();
    const [a, b] = await Promise.all([startDemo({ redisUrl: redis.url, env }), startDemo({ redisUrl: redis.url, env })]);
    servers.push(a, b);
    const alice = await a.connect('alice', { socketOptions: { reconnection: false } });
    const bob = await b.connect('bob');
    // No heartbeat of bea's: one that reached the server before the event of the DEL below
    // would be answered not-present first (a slow event is no bug).
    const bea = await b.connect('bea', { heartbeatIntervalMs: 600000 });
    clients.push(alice, bob, bea);
    for (const client of [alice, bob, bea]) await client.join(ROOM);
    await alice.waitForUsers(ROOM, ['alice', 'bea', 'bob']);
    await bob.waitForUsers(ROOM, ['alice', 'bea', 'bob']);
    await settled([alice, bob, bea]);

    const seenBefore = [alice, bob, bea].map((client) => client.participants.length);
    const carol = await a.connect('carol', { socketOptions: { reconnection: false } });
    clients.push(carol);
    await carol.join(ROOM);
    const everyone = ['alice', 'bea', 'bob', 'carol'];
    await Promise.all([alice, bob, bea].map((client) => client.waitForUsers(ROOM, everyone)));
    await settled([alice, bob, bea]);
    [alice, bob, bea].forEach((client, i) => {
      // A late send of the room before carol's join does not count: it does not list her.
      const received = client.participants.slice(seenBefore[i]).filter((event) => event.users.includes('carol'));
      assert.equal(received.length, 1, `one room:participants for one join, got ${JSON.stringify(client.participants.slice(seenBefore[i]))}`);
    });

    assert.equal(Number(await admin.sendCommand(['DEL', `room:presence:${ROOM}:bea`])), 1);
    // The module sees the raw DEL as it happens; the script engine at its sweep, as stale.
    assert.equal((await bea.waitForForceLeave(ROOM)).reason, SCRIPT_ENGINE ? 'stale' : 'deleted');
    await bob.waitForUsers(ROOM, ['alice', 'bob', 'carol']);
    await settled([alice, bob]);
    assert.equal(bea.rawForceLeaves.length, 1, 'one room:force-leave');

    const killedAt = Date.now();
    await a.stop('SIGKILL');
    const rightAt = await bob.waitForUsers(ROOM, ['bob'], 60000);
    const bound = STALE_AFTER_S * 1000 + 100 + PARTICIPANTS_INTERVAL_MS;
    t.diagnostic(`users of the killed server gone after ${rightAt - killedAt} ms (bound ${bound} ms plus scheduling on a quiet machine)`);
    assert.deepEqual(bob.rawForceLeaves, [], 'a live user is never force-left');
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', ROOM]), ['bob']);
    const dan = await b.connect('dan');
    clients.push(dan);
    assert.equal((await dan.join(ROOM)).count, 2, 'server B keeps serving');
  } finally {
    for (const client of clients) client.close();
    for (const server of servers) await server.stop('SIGKILL');
    await redis.stop();
  }
});
