'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./support/redis-server');
const { startSocketServer } = require('./support/socket-server');
const { TestClient } = require('./support/test-client');
const { waitFor } = require('./support/wait');
const { stopProcess } = require('./support/processes');
const { nodeIdPrefix } = require('../src/node-lease');

const LEASE_MS = 1000;

/** Blocks this process's event loop (and so every server and client in it) for `ms`, without spinning. */
function blockEventLoop(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Redis, one in-process Socket.IO server with the given options, and helpers; `run(context)`
 * does the rest, and everything is stopped afterwards.
 */
async function withServer({ redisConfig = { staleAfter: 30, sweepIntervalMs: 100 }, presenceOptions = {}, ioOptions = {} }, run) {
  const redis = await startRedis(redisConfig);
  const admin = await redis.client();
  const server = await startSocketServer(redis.url, { nodeLeaseMs: LEASE_MS, ...presenceOptions }, ioOptions);
  const clients = [];
  const context = {
    redis,
    admin,
    server,
    async connect(user, options = {}) {
      const client = new TestClient(server.url, { auth: { user }, ...options });
      clients.push(client);
      await client.connected();
      return client;
    },
    /** The socket of a client's presence keys: the server's node now, and the socket id. */
    held: (client) => `${server.presence.nodeId}/${client.socket.id}`,
    list: (roomId) => admin.sendCommand(['PRESENCE.LIST', roomId, 'WITHSOCKETS']),
    count: async (roomId) => Number(await admin.sendCommand(['PRESENCE.COUNT', roomId])),
    leaseTtl: async (nodeId) => Number(await admin.sendCommand(['PTTL', `presence:node:${nodeId}`])),
    lostLines: () => server.warnings.filter((line) => line.includes('node lease lost')),
  };
  try {
    return await run(context);
  } finally {
    for (const client of clients) client.close();
    await server.close();
    await redis.stop();
  }
}

describe('node lease', () => {
  it('is taken before connections are accepted and renewed; joins are written through the node', async () => {
    await withServer({}, async ({ server, connect, held, list, leaseTtl }) => {
      const { nodeId } = server.presence;
      assert.equal(nodeId.slice(0, -6), nodeIdPrefix(), 'host name and pid');
      assert.match(nodeId, /\.[0-9a-z]{6}$/);
      const ttl = await leaseTtl(nodeId);
      assert.ok(ttl > 0 && ttl <= LEASE_MS, `lease TTL ${ttl} ms`);

      const ann = await connect('ann');
      await ann.join('r-lease');
      assert.deepEqual(await list('r-lease'), ['ann', held(ann)]);
      // Three and a half leases: only renewals keep the presence.
      await new Promise((resolve) => setTimeout(resolve, 3.5 * LEASE_MS));
      assert.equal(server.presence.nodeId, nodeId);
      assert.deepEqual(await list('r-lease'), ['ann', held(ann)]);
      assert.ok((await leaseTtl(nodeId)) > 0);
      assert.deepEqual(ann.rawForceLeaves, []);
      assert.deepEqual(server.warnings, []);
    });
  });

  it('close() leaves every presence first, then releases the lease', async () => {
    await withServer({}, async ({ redis, server, connect, leaseTtl }) => {
      const subscriber = await redis.client();
      const events = [];
      await subscriber.pSubscribe('__presence@0__:*', (message, channel) => events.push({ event: channel.split(':').pop(), message }));
      const ann = await connect('ann');
      const bob = await connect('bob');
      await ann.join('r-close');
      await bob.join('r-close-2');
      const { nodeId } = server.presence;
      await server.presence.close();
      assert.equal(await leaseTtl(nodeId), -2, 'the lease key is gone');
      await waitFor(() => events.filter((event) => event.event === 'leave').length === 2, { message: 'two leave events' });
      assert.deepEqual(
        events.filter((event) => event.event !== 'join' && event.event !== 'node-down').map((event) => JSON.parse(event.message).reason),
        ['leave', 'leave'],
        'left, not force-left when the lease ended',
      );
    });
  });

  it('lost while the event loop is blocked: its sockets are told node-down once, it goes on as a fresh node', async () => {
    // Socket.IO's production ping timings, so that the block does not disconnect the sockets.
    const ioOptions = { pingInterval: 25000, pingTimeout: 20000 };
    await withServer({ ioOptions }, async ({ server, connect, held, list, count, leaseTtl, lostLines }) => {
      const ann = await connect('ann');
      const bob = await connect('bob');
      await ann.join('r-block');
      await bob.join('r-block');
      const oldNodeId = server.presence.nodeId;

      blockEventLoop(2.5 * LEASE_MS);

      for (const client of [ann, bob]) assert.equal((await client.waitForForceLeave('r-block')).reason, 'node-down');
      const newNodeId = server.presence.nodeId;
      assert.notEqual(newNodeId, oldNodeId);
      assert.equal(newNodeId.slice(0, newNodeId.lastIndexOf('.')), oldNodeId.slice(0, oldNodeId.lastIndexOf('.')));
      assert.equal(lostLines().length, 1, server.warnings.join('\n'));
      assert.match(
        lostLines()[0],
        new RegExp(
          `^presence: node lease lost: it expired while the event loop was blocked for \\d+ ms \\(no renewal for \\d+ ms, lease ${LEASE_MS} ms\\); .*; ` +
            `the \\d presence\\(s\\) of this server's sockets went with node ${oldNodeId.replaceAll('.', '\\.')} and were force-left \\(node-down\\); ` +
            `continuing as node ${newNodeId.replaceAll('.', '\\.')}$`,
        ),
      );
      await waitFor(async () => (await leaseTtl(newNodeId)) > 0, { message: 'the lease of the fresh node' });
      await waitFor(async () => (await leaseTtl(oldNodeId)) === -2, { message: 'no lease of the old node' });
      await waitFor(async () => (await count('r-block')) === 0, { message: 'an empty room' });

      const ack = await ann.join('r-block');
      assert.deepEqual([ack.ok, ack.users, ack.count], [true, ['ann'], 1]);
      assert.deepEqual(await list('r-block'), ['ann', held(ann)]);
      assert.ok(held(ann).startsWith(`${newNodeId}/`));
      await new Promise((resolve) => setTimeout(resolve, 2 * LEASE_MS));
      assert.deepEqual(await list('r-block'), ['ann', held(ann)]);
      assert.equal(ann.rawForceLeaves.length, 1, 'one force-leave per join');
      assert.equal(bob.rawForceLeaves.length, 1);
      assert.deepEqual(
        await bob.socket.timeout(5000).emitWithAck('room:heartbeat', { roomId: 'r-block' }),
        { ok: false, error: 'not-present' },
        'the force-left socket knows it is out',
      );
      assert.equal(bob.rawForceLeaves.length, 1);
      assert.equal(lostLines().length, 1);
    });
  });

  it('lost while Redis is unreachable: its sockets are told node-down at once, a fresh node once Redis is back', async (t) => {
    await withServer({}, async ({ redis, server, connect, held, list, leaseTtl, lostLines }) => {
      const ann = await connect('ann', { heartbeatIntervalMs: 60000 });
      await ann.join('r-down');
      const oldNodeId = server.presence.nodeId;

      const downAt = Date.now();
      await stopProcess(redis.process, 'SIGKILL');
      // Told while Redis is still down: the server judges the lease by its own clock.
      const event = await ann.waitForForceLeave('r-down', 30000);
      t.diagnostic(`told node-down ${event.at - downAt} ms after the kill`);
      assert.equal(event.reason, 'node-down');
      assert.equal(lostLines().length, 1, server.warnings.join('\n'));
      const expected =
        /^presence: node lease lost: it expired while Redis did not answer \(no successful renewal for (\d+) ms, lease 1000 ms\); the last renewals failed: /;
      assert.match(lostLines()[0], expected);
      const [, silentMs] = expected.exec(lostLines()[0]);
      // Not before the lease could have ended: no successful renewal for a whole lease.
      assert.ok(Number(silentMs) >= LEASE_MS, lostLines()[0]);

      await redis.restart();
      const newNodeId = server.presence.nodeId;
      assert.notEqual(newNodeId, oldNodeId);
      await waitFor(async () => (await leaseTtl(newNodeId).catch(() => 0)) > 0, {
        timeoutMs: 15000,
        message: 'the lease of the fresh node',
      });
      const bob = await connect('bob');
      assert.equal((await bob.join('r-down')).ok, true);
      assert.deepEqual(await list('r-down'), ['bob', held(bob)]);
      assert.equal(ann.rawForceLeaves.length, 1);
    });
  });

  it('a join refused with NOLEASE takes a fresh node and joins through it', async () => {
    // A long lease and a sweeper that does not run: only the join can find the lease gone.
    const redisConfig = { staleAfter: 30, sweepIntervalMs: 3600000 };
    await withServer(
      { redisConfig, presenceOptions: { nodeLeaseMs: 60000 } },
      async ({ admin, server, connect, held, list, lostLines }) => {
        const ann = await connect('ann', { heartbeatIntervalMs: 60000 });
        await ann.join('r-nolease');
        const oldNodeId = server.presence.nodeId;
        assert.equal(Number(await admin.sendCommand(['DEL', `presence:node:${oldNodeId}`])), 1);

        const bob = await connect('bob', { heartbeatIntervalMs: 60000 });
        const ack = await bob.join('r-nolease');
        assert.deepEqual([ack.ok, ack.users, ack.count], [true, ['bob'], 1]);
        assert.notEqual(server.presence.nodeId, oldNodeId);
        assert.deepEqual(await list('r-nolease'), ['bob', held(bob)]);
        assert.equal((await ann.waitForForceLeave('r-nolease')).reason, 'reset', 'Redis lost the lease while it was renewed on time');
        assert.equal(lostLines().length, 1, server.warnings.join('\n'));
        assert.match(
          lostLines()[0],
          /^presence: node lease lost: a join was refused with NOLEASE, \d+ ms after the last renewal \(lease 60000 ms\): Redis lost it/,
        );
        assert.deepEqual(bob.rawForceLeaves, []);
      },
    );
  });

  it('is released by close() even after a lost lease, and a second close() does nothing', async () => {
    const redisConfig = { staleAfter: 30, sweepIntervalMs: 100 };
    await withServer({ redisConfig }, async ({ admin, server, leaseTtl }) => {
      const oldNodeId = server.presence.nodeId;
      await admin.sendCommand(['DEL', `presence:node:${oldNodeId}`]);
      await waitFor(() => server.presence.nodeId !== oldNodeId, { message: 'a fresh node' });
      const newNodeId = server.presence.nodeId;
      await waitFor(async () => (await leaseTtl(newNodeId)) > 0, { message: 'the lease of the fresh node' });
      await server.presence.close();
      await server.presence.close();
      assert.equal(await leaseTtl(newNodeId), -2);
      assert.deepEqual(await admin.sendCommand(['KEYS', 'presence:node:*']), []);
    });
  });
});
