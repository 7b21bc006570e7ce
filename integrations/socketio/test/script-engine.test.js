'use strict';

const net = require('node:net');
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./support/redis-server');
const { startSocketServer } = require('./support/socket-server');
const { startAppProcess } = require('./support/app-process');
const { TestClient } = require('./support/test-client');
const { waitFor } = require('./support/wait');
const { stopProcess } = require('./support/processes');
const { ScriptLibrary } = require('../src/engines/script-library');

/** The channel a test publishes its markers on: read after every event published before it. */
const MARKER_CHANNEL = 'script-engine-test:marker';

/** The SHA1 of the library's EVAL form, as the engine loads it with SCRIPT LOAD. */
const EVAL_SHA = (() => {
  const library = new ScriptLibrary(async () => null);
  library.mode = 'eval';
  return library.command('count', [], [])[1];
})();

/**
 * Every event of the script engine (`__presence@0__:<event>`), recorded by a client of its own,
 * and {@link marker}s after which every event published before is in.
 * @param {Awaited<ReturnType<typeof startRedis>>} redis
 */
async function listen(redis) {
  const subscriber = await redis.client();
  /** @type {Array<{event: string, room?: string, user?: string, socket?: string, count?: number, reason?: string, node?: string, presences?: number}>} */
  const events = [];
  /** @type {Set<string>} */
  const markers = new Set();
  await subscriber.pSubscribe('__presence@0__:*', (message, channel) => {
    events.push({ event: channel.slice(channel.indexOf(':') + 1), ...JSON.parse(message) });
  });
  await subscriber.subscribe(MARKER_CHANNEL, (message) => markers.add(message));
  let sequence = 0;
  return {
    events,
    /** The events named `event`. */
    of: (event) => events.filter((candidate) => candidate.event === event),
    /**
     * Publishes a marker and waits for it: every event Redis published before is then in
     * `events` (one connection receives its messages in the order they were published).
     * @param {import('redis').RedisClientType} admin
     */
    async marker(admin) {
      const id = `m${(sequence += 1)}`;
      await admin.sendCommand(['PUBLISH', MARKER_CHANNEL, id]);
      await waitFor(() => markers.has(id), { timeoutMs: 10000, message: `marker ${id}` });
    },
  };
}

/**
 * Waits until Redis holds no presence and no room waits on the sweep's schedule: every sweep
 * that removed something has ended (a script runs whole), and none is left to announce more.
 * @param {import('redis').RedisClientType} admin
 * @param {number} timeoutMs
 */
async function waitSwept(admin, timeoutMs = 30000) {
  await waitFor(
    async () => {
      const keys = /** @type {string[]} */ (await admin.sendCommand(['KEYS', 'room:presence:*']));
      const scheduled = Number(await admin.sendCommand(['ZCARD', 'presence:rooms']));
      return keys.length === 0 && scheduled === 0 ? true : { keys, scheduled };
    },
    { timeoutMs, intervalMs: 50, message: 'no presence key and no room on the sweep schedule' },
  );
}

/**
 * How many times each `room user` pair appears among `events`, and with which reasons.
 * @param {Array<{room?: string, user?: string, reason?: string}>} events
 */
function byPresence(events) {
  /** @type {Map<string, string[]>} */
  const seen = new Map();
  for (const event of events) {
    const key = `${event.room} ${event.user}`;
    seen.set(key, [...(seen.get(key) ?? []), String(event.reason)]);
  }
  return seen;
}

/**
 * Runs `run` with the things it starts, and stops them all afterwards, whatever happens.
 * @param {(scope: {defer: (stop: () => unknown) => void}) => Promise<void>} run
 */
async function scoped(run) {
  /** @type {Array<() => unknown>} */
  const stops = [];
  try {
    await run({ defer: (stop) => stops.push(stop) });
  } finally {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch {
        // keep stopping the rest
      }
    }
  }
}

/**
 * A connected TestClient of `url`, closed at the end of the scope.
 * @param {{defer: (stop: () => unknown) => void}} scope
 * @param {string} url
 * @param {string} user
 * @param {object} [options] more TestClient options
 */
async function connect(scope, url, user, options = {}) {
  const client = new TestClient(url, { auth: { user }, ...options });
  scope.defer(() => client.close());
  await client.connected(20000);
  return client;
}

/**
 * A TCP proxy on 127.0.0.1 to a Redis server, which a failover points at another one: every
 * connection open is then cut, so that the clients connect again, to the new target.
 */
class FailoverProxy {
  /** @param {number} targetPort */
  constructor(targetPort) {
    this.targetPort = targetPort;
    /** @type {Set<net.Socket>} */
    this.sockets = new Set();
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** Listens; resolves with the proxy's port. */
  start() {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port)));
  }

  /**
   * Points new connections at `port` and cuts every open one.
   * @param {number} port
   */
  retarget(port) {
    this.targetPort = port;
    for (const socket of this.sockets) socket.destroy();
  }

  close() {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }
}

/**
 * A number of `INFO replication` (`master_repl_offset`, `slave_repl_offset`).
 * @param {import('redis').RedisClientType} admin
 * @param {string} field
 */
async function replicationOffset(admin, field) {
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(String(await admin.sendCommand(['INFO', 'replication'])));
  return match ? Number(match[1]) : -1;
}

/** @param {import('redis').RedisClientType} admin */
async function libraryNames(admin) {
  const libraries = /** @type {unknown[][]} */ (await admin.sendCommand(['FUNCTION', 'LIST']));
  return libraries.map((library) => String(library[library.indexOf('library_name') + 1]));
}

/** @param {import('redis').RedisClientType} admin */
async function evalScriptLoaded(admin) {
  const [exists] = /** @type {number[]} */ (await admin.sendCommand(['SCRIPT', 'EXISTS', EVAL_SHA]));
  return Number(exists) === 1;
}

/**
 * Calls of a command since the server started, from `INFO commandstats` (`function|load`, …).
 * @param {import('redis').RedisClientType} admin
 * @param {string} command
 */
async function commandCalls(admin, command) {
  const info = String(await admin.sendCommand(['INFO', 'commandstats']));
  const match = new RegExp(`^cmdstat_${command.replace('|', '\\|')}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

describe('script engine: choosing it', () => {
  it("refuses engine 'module' without the module, picks the script engine on auto, refuses db 1", async () => {
    await scoped(async (scope) => {
      const redis = await startRedis({ staleAfter: 2, sweepIntervalMs: 100, engine: 'script' });
      scope.defer(() => redis.stop());
      const settings = { staleAfter: 2, sweepIntervalMs: 100 };

      await assert.rejects(startSocketServer(redis.url, { ...settings, engine: 'module' }), (err) => {
        assert.equal(err.name, 'PresenceError');
        assert.equal(err.code, 'unavailable');
        assert.match(
          err.message,
          /^engine 'module': the Redis server has no PRESENCE\.JOIN \(load the presence module, or use engine 'script' or 'auto'\)$/,
        );
        return true;
      });

      const app = await startSocketServer(redis.url, { ...settings, engine: 'auto' });
      scope.defer(() => app.close());
      assert.equal(app.presence.engine, 'script');
      assert.deepEqual(app.infos, ['presence: engine script (FCALL): the server has no presence module']);
      const admin = await redis.client();
      assert.deepEqual(await libraryNames(admin), ['presence_v1']);

      for (const engine of ['script', 'auto']) {
        await assert.rejects(startSocketServer(redis.url, { ...settings, engine, db: 1 }), (err) => {
          assert.ok(err instanceof TypeError, `${engine}: ${err}`);
          assert.equal(err.message, 'attachPresence: the script engine publishes its events for database 0 only (options.db is 1)');
          return true;
        });
      }
      assert.deepEqual(app.warnings, []);
    });
  });
});

describe('script engine: the sweep', () => {
  it('two app servers sweep the same Redis: every stale presence is removed and announced once', async () => {
    await scoped(async (scope) => {
      const redis = await startRedis({ staleAfter: 2, sweepIntervalMs: 100, engine: 'script' });
      scope.defer(() => redis.stop());
      const admin = await redis.client();
      const events = await listen(redis);
      const servers = [];
      for (let i = 0; i < 2; i += 1) {
        const server = await startSocketServer(redis.url);
        scope.defer(() => server.close());
        servers.push(server);
      }
      const rooms = ['r-sweep-0', 'r-sweep-1', 'r-sweep-2'];
      const users = Array.from({ length: 30 }, (_, i) => ({ user: `u${i}`, room: rooms[i % 3], server: servers[i % 2] }));
      const clients = await Promise.all(
        users.map(({ user, server }) => connect(scope, server.url, user, { heartbeatIntervalMs: 60000, heartbeatJitterMs: 0 })),
      );
      const acks = await Promise.all(clients.map((client, i) => client.join(users[i].room)));
      assert.deepEqual(
        acks.map((ack) => ack.ok),
        users.map(() => true),
      );

      await waitFor(() => events.of('force-leave').length >= users.length, {
        timeoutMs: 30000,
        message: `${users.length} force-leave events`,
      });
      await waitSwept(admin);
      await events.marker(admin);

      assert.equal(byPresence(events.of('join')).size, users.length, 'every join was announced');
      const forceLeaves = byPresence(events.of('force-leave'));
      assert.deepEqual(
        [...forceLeaves.entries()].sort(),
        users.map(({ room, user }) => [`${room} ${user}`, ['stale']]).sort(),
        'each presence announced once, stale',
      );
      for (const room of rooms) assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', room])), 0, room);
      assert.ok(
        servers.map((server) => server.presence.nodeId).includes(String(await admin.sendCommand(['GET', 'presence:sweep-lease']))),
        'one of the two servers holds the sweep lease',
      );

      await waitFor(() => clients.every((client) => client.rawForceLeaves.length >= 1), {
        timeoutMs: 20000,
        message: 'a room:force-leave on every client',
      });
      for (const [i, client] of clients.entries()) {
        assert.deepEqual(
          client.rawForceLeaves.map(({ roomId, reason }) => ({ roomId, reason })),
          [{ roomId: users[i].room, reason: 'stale' }],
          users[i].user,
        );
      }
      for (const server of servers) assert.deepEqual(server.warnings, []);
    });
  });

  it('kill -9 of the sweeping server: the survivor takes the sweep lease; the dead node ends with node-down', async (t) => {
    await scoped(async (scope) => {
      // staleAfter 4 s and a node lease of 2 s: the killed server's presences, which beat up to
      // the kill, end with their node (node-down) well before they would go stale.
      const settings = { engine: 'script', staleAfter: 4, sweepIntervalMs: 100 };
      const redis = await startRedis({ ...settings, engine: 'script' });
      scope.defer(() => redis.stop());
      const admin = await redis.client();
      const events = await listen(redis);
      const sweepLease = async () => String(await admin.sendCommand(['GET', 'presence:sweep-lease']));

      const doomed = await startAppProcess(redis.url, { ...settings, nodeLeaseMs: 2000 });
      scope.defer(() => doomed.stop('SIGKILL'));
      await waitFor(async () => (await sweepLease()) === doomed.nodeId, { timeoutMs: 20000, message: 'the child to take the sweep lease' });
      const survivor = await startSocketServer(redis.url, { nodeLeaseMs: 2000 });
      scope.defer(() => survivor.close());

      const rooms = ['r-kill-0', 'r-kill-1'];
      const doomedUsers = Array.from({ length: 6 }, (_, i) => ({ user: `d${i}`, room: rooms[i % 2] }));
      const doomedClients = await Promise.all(
        doomedUsers.map(({ user }) => connect(scope, doomed.url, user, { heartbeatIntervalMs: 200, heartbeatJitterMs: 0 })),
      );
      for (const [i, client] of doomedClients.entries()) assert.equal((await client.join(doomedUsers[i].room)).ok, true);
      await waitFor(async () => (await sweepLease()) === doomed.nodeId, { timeoutMs: 20000, message: 'the child to hold the sweep lease' });

      const killedAt = Date.now();
      await doomed.stop('SIGKILL');
      for (const client of doomedClients) client.close();
      await waitFor(async () => (await sweepLease()) === survivor.presence.nodeId, {
        timeoutMs: 20000,
        message: 'the survivor to take the sweep lease',
      });
      t.diagnostic(`the survivor holds the sweep lease ${Date.now() - killedAt} ms after the kill`);

      const survivorUsers = Array.from({ length: 6 }, (_, i) => ({ user: `s${i}`, room: rooms[i % 2] }));
      const survivorClients = await Promise.all(
        survivorUsers.map(({ user }) => connect(scope, survivor.url, user, { heartbeatIntervalMs: 60000, heartbeatJitterMs: 0 })),
      );
      for (const [i, client] of survivorClients.entries()) assert.equal((await client.join(survivorUsers[i].room)).ok, true);

      const expected = doomedUsers.length + survivorUsers.length;
      await waitFor(() => events.of('force-leave').length >= expected, { timeoutMs: 30000, message: `${expected} force-leave events` });
      await waitSwept(admin);
      await events.marker(admin);

      assert.deepEqual(
        events.of('node-down').map(({ node, presences }) => ({ node, presences })),
        [{ node: doomed.nodeId, presences: doomedUsers.length }],
        'the dead node announced once, with its presences',
      );
      assert.deepEqual(
        [...byPresence(events.of('force-leave')).entries()].sort(),
        [
          ...doomedUsers.map(({ room, user }) => [`${room} ${user}`, ['node-down']]),
          ...survivorUsers.map(({ room, user }) => [`${room} ${user}`, ['stale']]),
        ].sort(),
        "the dead node's presences node-down, the survivor's stale, each once",
      );
      for (const room of rooms) assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', room])), 0, room);
      assert.equal(await sweepLease(), survivor.presence.nodeId);

      await waitFor(() => survivorClients.every((client) => client.rawForceLeaves.length >= 1), {
        timeoutMs: 20000,
        message: "a room:force-leave on each of the survivor's clients",
      });
      for (const [i, client] of survivorClients.entries()) {
        assert.deepEqual(
          client.rawForceLeaves.map(({ roomId, reason }) => ({ roomId, reason })),
          [{ roomId: survivorUsers[i].room, reason: 'stale' }],
          survivorUsers[i].user,
        );
      }
      assert.deepEqual(survivor.warnings, []);
    });
  });

  it('after a lost node lease, the sweep lease is held under the fresh node id', async () => {
    await scoped(async (scope) => {
      const redis = await startRedis({ staleAfter: 30, sweepIntervalMs: 100, engine: 'script' });
      scope.defer(() => redis.stop());
      const admin = await redis.client();
      const server = await startSocketServer(redis.url, { nodeLeaseMs: 2000 });
      scope.defer(() => server.close());
      const sweepLease = async () => String(await admin.sendCommand(['GET', 'presence:sweep-lease']));
      const oldNodeId = server.presence.nodeId;
      await waitFor(async () => (await sweepLease()) === oldNodeId, { timeoutMs: 20000, message: 'the sweep lease' });
      assert.equal(Number(await admin.sendCommand(['DEL', `presence:node:${oldNodeId}`])), 1);
      await waitFor(() => server.presence.nodeId !== oldNodeId, { timeoutMs: 20000, message: 'a fresh node' });
      // The sweep lease lives 1000 ms: its holder renews it every 100 ms.
      await waitFor(async () => (await sweepLease()) === server.presence.nodeId, {
        timeoutMs: 4000,
        message: `the sweep lease held by the fresh node ${server.presence.nodeId}, not ${oldNodeId}`,
      });
    });
  });
});

describe('script engine: a lost library', () => {
  for (const engine of ['script', 'script-evalsha']) {
    it(`${engine}: SCRIPT FLUSH${engine === 'script' ? ' and FUNCTION FLUSH' : ''} while clients heartbeat: no request fails, the library is loaded again`, async () => {
      await scoped(async (scope) => {
        const redis = await startRedis({ staleAfter: 30, sweepIntervalMs: 100, engine });
        scope.defer(() => redis.stop());
        const admin = await redis.client();
        const infos = [];
        const warnings = [];
        const server = await startSocketServer(redis.url, {
          logger: { info: (line) => infos.push(line), warn: (line) => warnings.push(line) },
        });
        scope.defer(() => server.close());
        const mode = engine === 'script' ? 'FCALL' : 'EVALSHA';
        assert.deepEqual(infos, [`presence: engine script (${mode}): asked for`]);
        const loaded =
          engine === 'script' ? async () => (await libraryNames(admin)).includes('presence_v1') : () => evalScriptLoaded(admin);
        const loads = () => commandCalls(admin, engine === 'script' ? 'function|load' : 'script|load');
        assert.equal(await loaded(), true);

        const rooms = ['r-flush-0', 'r-flush-1'];
        const clients = [];
        for (let i = 0; i < 4; i += 1) {
          const client = await connect(scope, server.url, `f${i}`, { heartbeatIntervalMs: 60000 });
          assert.equal((await client.join(rooms[i % 2])).ok, true);
          clients.push(client);
        }

        // Heartbeats back to back from every client, each acknowledgement kept.
        /** @type {unknown[]} */
        const replies = [];
        let beating = true;
        const loops = clients.map(async (client, i) => {
          while (beating) {
            replies.push(await client.socket.timeout(10000).emitWithAck('room:heartbeat', { roomId: rooms[i % 2] }));
          }
        });

        const flushes =
          engine === 'script'
            ? ['FUNCTION', 'SCRIPT', 'FUNCTION', 'SCRIPT', 'FUNCTION', 'FUNCTION']
            : ['SCRIPT', 'SCRIPT', 'SCRIPT', 'SCRIPT'];
        try {
          for (const kind of flushes) {
            const before = replies.length;
            await waitFor(() => replies.length >= before + 8, { timeoutMs: 20000, message: '8 more heartbeats' });
            const loadsBefore = await loads();
            assert.equal(await admin.sendCommand([kind, 'FLUSH']), 'OK');
            if (kind === 'FUNCTION' || engine === 'script-evalsha') {
              // The library the engine calls is gone: the next call loads it again.
              await waitFor(async () => (await loads()) > loadsBefore && (await loaded()), {
                timeoutMs: 20000,
                message: `the library loaded again after ${kind} FLUSH`,
              });
            }
            const after = replies.length;
            await waitFor(() => replies.length >= after + 8, { timeoutMs: 20000, message: `8 heartbeats after ${kind} FLUSH` });
          }
        } finally {
          beating = false;
          await Promise.all(loops);
        }
        assert.ok(replies.length >= flushes.length * 16);
        assert.deepEqual(
          replies.filter((reply) => JSON.stringify(reply) !== '{"ok":true}'),
          [],
          'every heartbeat acknowledged ok',
        );

        // Calls written in a transaction (a join, a room's read) after a flush, with no
        // heartbeat under way.
        const flush = engine === 'script' ? 'FUNCTION' : 'SCRIPT';
        await admin.sendCommand([flush, 'FLUSH']);
        const late = await connect(scope, server.url, 'late', { heartbeatIntervalMs: 60000 });
        const ack = await late.join(rooms[0]);
        assert.deepEqual([ack.ok, ack.users, ack.count], [true, ['f0', 'f2', 'late'], 3]);
        await admin.sendCommand([flush, 'FLUSH']);
        assert.deepEqual((await server.presence.readRoom(rooms[1])).users, ['f1', 'f3']);
        await admin.sendCommand([flush, 'FLUSH']);
        assert.deepEqual(await late.presence.leave(rooms[0]), { ok: true });
        assert.equal(await loaded(), true);

        for (const room of rooms) assert.equal(Number(await admin.sendCommand(['PRESENCE.COUNT', room])), 2, room);
        for (const client of [...clients, late]) assert.deepEqual(client.rawForceLeaves, []);
        assert.deepEqual(warnings, []);
      });
    });
  }
});

describe('script engine: a server that lost everything', () => {
  for (const engine of ['script-evalsha', 'script']) {
    const viaEvalsha = engine === 'script-evalsha';
    const title = viaEvalsha
      ? 'script-evalsha: a failover to a replica that never loaded the EVAL form: it is loaded there, the app goes on, its presences kept'
      : 'script: a failover to a replica (which got the library from its master): the app goes on, its presences kept';
    it(title, async () => {
      await scoped(async (scope) => {
        const settings = { staleAfter: 30, sweepIntervalMs: 100, engine };
        const master = await startRedis(settings);
        scope.defer(() => master.stop());
        const replica = await startRedis(settings);
        scope.defer(() => replica.stop());
        const masterAdmin = await master.client();
        const replicaAdmin = await replica.client();
        await masterAdmin.sendCommand(['CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);
        await replicaAdmin.sendCommand(['REPLICAOF', '127.0.0.1', String(master.port)]);
        await waitFor(async () => /master_link_status:up/.test(String(await replicaAdmin.sendCommand(['INFO', 'replication']))), {
          timeoutMs: 20000,
          message: 'the replica in sync',
        });

        const proxy = new FailoverProxy(master.port);
        const proxyPort = await proxy.start();
        scope.defer(() => proxy.close());
        const app = await startSocketServer(`redis://127.0.0.1:${proxyPort}`, {
          engine: 'script',
          staleAfter: settings.staleAfter,
          sweepIntervalMs: settings.sweepIntervalMs,
          nodeLeaseMs: 5000,
        });
        scope.defer(() => app.close());
        assert.deepEqual(app.infos, [`presence: engine script (${viaEvalsha ? 'EVALSHA' : 'FCALL'}): asked for`]);

        const ann = await connect(scope, app.url, 'ann', { heartbeatIntervalMs: 200 });
        const bob = await connect(scope, app.url, 'bob', { heartbeatIntervalMs: 200 });
        assert.equal((await ann.join('r-failover')).ok, true);
        assert.equal((await bob.join('r-failover')).ok, true);
        // The replica has every write so far (WAIT would only count the writes of its own client).
        const written = await replicationOffset(masterAdmin, 'master_repl_offset');
        await waitFor(async () => (await replicationOffset(replicaAdmin, 'slave_repl_offset')) >= written, {
          timeoutMs: 20000,
          message: `the replica at offset ${written}`,
        });
        if (viaEvalsha) {
          assert.equal(await evalScriptLoaded(masterAdmin), true);
          assert.equal(await evalScriptLoaded(replicaAdmin), false, 'SCRIPT LOAD is not replicated');
        } else {
          assert.deepEqual(await libraryNames(replicaAdmin), ['presence_v1'], 'FUNCTION LOAD is replicated');
        }

        await stopProcess(master.process, 'SIGKILL');
        await replicaAdmin.sendCommand(['REPLICAOF', 'NO', 'ONE']);
        proxy.retarget(replica.port);

        const carol = await connect(scope, app.url, 'carol', { heartbeatIntervalMs: 200 });
        const ack = await waitFor(
          async () => {
            const reply = await carol.join('r-failover');
            return reply.ok ? reply : null;
          },
          { timeoutMs: 20000, intervalMs: 200, message: 'a join after the failover' },
        );
        assert.deepEqual([ack.users, ack.count], [['ann', 'bob', 'carol'], 3]);
        if (viaEvalsha) assert.equal(await evalScriptLoaded(replicaAdmin), true, 'the engine loaded the library on the new master');
        for (const client of [ann, bob]) {
          assert.deepEqual(await client.socket.timeout(10000).emitWithAck('room:heartbeat', { roomId: 'r-failover' }), { ok: true });
        }
        assert.deepEqual(await replicaAdmin.sendCommand(['PRESENCE.LIST', 'r-failover']), ['ann', 'bob', 'carol']);
        for (const client of [ann, bob, carol]) assert.deepEqual(client.rawForceLeaves, []);
        assert.deepEqual(
          app.warnings.filter((line) => line.includes('node lease lost')),
          [],
          'the node lease came through the failover',
        );
      });
    });
  }

  for (const engine of ['script', 'script-evalsha']) {
    it(`${engine}: Redis restarted empty: the library is loaded again and joins go on`, async () => {
      await scoped(async (scope) => {
        const redis = await startRedis({ staleAfter: 30, sweepIntervalMs: 100, engine });
        scope.defer(() => redis.stop());
        const admin = await redis.client();
        const server = await startSocketServer(redis.url, { nodeLeaseMs: 2000 });
        scope.defer(() => server.close());
        const ann = await connect(scope, server.url, 'ann', { heartbeatIntervalMs: 60000 });
        assert.equal((await ann.join('r-restart')).ok, true);
        const oldNodeId = server.presence.nodeId;

        await redis.restart();
        const event = await ann.waitForForceLeave('r-restart', 20000);
        assert.ok(['reset', 'node-down'].includes(event.reason), event.reason);

        const bob = await connect(scope, server.url, 'bob', { heartbeatIntervalMs: 60000 });
        const ack = await waitFor(
          async () => {
            const reply = await bob.join('r-restart');
            return reply.ok ? reply : null;
          },
          { timeoutMs: 20000, intervalMs: 200, message: 'a join after the restart' },
        );
        assert.deepEqual([ack.users, ack.count], [['bob'], 1]);
        assert.notEqual(server.presence.nodeId, oldNodeId, 'a fresh node after the lease was lost');
        if (engine === 'script') assert.deepEqual(await libraryNames(admin), ['presence_v1']);
        else assert.equal(await evalScriptLoaded(admin), true);
        const load = engine === 'script' ? 'function|load' : 'script|load';
        assert.ok((await commandCalls(admin, load)) >= 1, 'loaded on the restarted server');
        assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-restart', 'WITHSOCKETS']), [
          'bob',
          `${server.presence.nodeId}/${bob.socket.id}`,
        ]);
        assert.equal(ann.rawForceLeaves.length, 1);
        assert.deepEqual(bob.rawForceLeaves, []);
      });
    });
  }
});
