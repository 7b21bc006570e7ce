'use strict';

/*
 * Node leases end to end: demo servers as processes behind the Redis adapter, with production
 * timings (Socket.IO's ping defaults, heartbeats every 25-30 s, presence.stale-after 90 s,
 * presence.sweep-interval 1000 ms) except the node lease, 2 s instead of 10 s to keep the
 * tests short.
 */
const test = require('node:test');
const assert = require('node:assert/strict');
const { startRedis, waitFor } = require('./support/shared');
const { startDemo } = require('./support/demo-server');
const { serverCrashWithLease, sweepCounters, PRODUCTION_TIMINGS } = require('./support/scenarios');

const LEASE_MS = 2000;
const ROOM = 'stage';

for (const restart of [false, true]) {
  test(`one of two servers is killed${restart ? ' and restarted at once' : ', no restart'}: the other's users see its users leave through its node lease, long before stale-after`, async (t) => {
    // Right again long before stale-after (90 s), its presences removed as node-down: see serverCrashWithLease.
    const result = await serverCrashWithLease({ leaseMs: LEASE_MS, restart });
    t.diagnostic(`${result.situation}: ${result.measuredMs} ms (bound ${result.boundMs} ms on a quiet machine, node lease ${LEASE_MS} ms)`);
  });
}

test('a server stopped (SIGSTOP) longer than its lease recovers: its users are told node-down, nothing stays wrong', async (t) => {
  const { sweepIntervalMs, staleAfterS, participantsIntervalMs, heartbeatIntervalMs, heartbeatJitterMs } = PRODUCTION_TIMINGS;
  const redis = await startRedis({ staleAfter: staleAfterS, sweepIntervalMs });
  const env = { NODE_LEASE_MS: LEASE_MS };
  const servers = [];
  const clients = [];
  let stopped = null;
  try {
    const admin = await redis.client();
    const [a, b] = await Promise.all([startDemo({ redisUrl: redis.url, env }), startDemo({ redisUrl: redis.url, env })]);
    servers.push(a, b);
    const connect = async (server, user) => {
      const client = await server.connect(user, { heartbeatIntervalMs, heartbeatJitterMs });
      clients.push(client);
      return client;
    };
    const alice = await connect(a, 'alice');
    const amy = await connect(a, 'amy');
    const bob = await connect(b, 'bob');
    for (const client of [alice, amy, bob]) assert.equal((await client.join(ROOM)).ok, true);
    await bob.waitForUsers(ROOM, ['alice', 'amy', 'bob']);
    const oldNode = a.nodeId;

    const sweeps = async () => sweepCounters(await admin.sendCommand(['INFO', 'presence']));
    const sweptBefore = await sweeps();
    const stoppedAt = Date.now();
    stopped = a.process;
    stopped.kill('SIGSTOP');
    // Within a minute, and so long before stale-after (90 s): through the node lease.
    const rightAt = await bob.waitForUsers(ROOM, ['bob'], 60000);
    t.diagnostic(
      `the stopped server's users gone after ${rightAt - stoppedAt} ms ` +
        `(bound ${LEASE_MS + sweepIntervalMs + participantsIntervalMs} ms plus scheduling on a quiet machine)`,
    );
    // The server resumes once the sweeper has removed its two presences as node-down.
    await waitFor(async () => (await sweeps()).nodeDown - sweptBefore.nodeDown === 2, {
      timeoutMs: 30000,
      message: "the stopped server's two presences removed as node-down",
    });
    stopped.kill('SIGCONT');
    stopped = null;

    for (const client of [alice, amy]) assert.equal((await client.waitForForceLeave(ROOM, 30000)).reason, 'node-down');
    await waitFor(() => a.nodeId !== oldNode, { message: 'a fresh node in the log' });
    const newNode = a.nodeId;
    assert.equal(newNode.slice(0, newNode.lastIndexOf('.')), oldNode.slice(0, oldNode.lastIndexOf('.')), 'same host and pid');
    assert.match(a.output, /presence: node lease lost: it expired while the event loop was blocked for \d+ ms \(no renewal for \d+ ms, lease 2000 ms\)/);
    assert.equal(a.output.match(/node lease lost/g).length, 1, a.output);

    assert.equal((await alice.join(ROOM)).ok, true, 'the server works again');
    await bob.waitForUsers(ROOM, ['alice', 'bob']);
    const list = await admin.sendCommand(['PRESENCE.LIST', ROOM, 'WITHSOCKETS']);
    assert.deepEqual(list, ['alice', a.held(alice), 'bob', b.held(bob)]);
    assert.ok(a.held(alice).startsWith(`${newNode}/`));
    assert.equal(Number(await admin.sendCommand(['EXISTS', `presence:node:${oldNode}`])), 0, 'the old node is not used again');
    await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', ROOM]), ['alice', 'bob'], 'the fresh node keeps its presences');
    assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', ROOM])), 2);
    assert.equal(alice.rawForceLeaves.length, 1, 'one force-leave per join');
    assert.equal(amy.rawForceLeaves.length, 1);
    assert.deepEqual(bob.rawForceLeaves, [], 'a live user of the other server is never force-left');
    await alice.waitForUsers(ROOM, ['alice', 'bob']);
  } finally {
    if (stopped) stopped.kill('SIGCONT');
    for (const client of clients) client.close();
    for (const server of servers) await server.stop('SIGKILL');
    await redis.stop();
  }
});
