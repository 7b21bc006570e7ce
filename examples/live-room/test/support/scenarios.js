'use strict';

/*
 * The five situations of the requirement, each run against real processes (redis-server with
 * the presence module, `node server.js`, socket.io-client users) with short timings, and the
 * crash of one of two servers with production timings and a node lease. Each checks that the
 * participant list and the viewer count are right again, through the mechanism meant for the
 * situation (the module's sweep counters tell a LEAVE from a sweep, and a node-down sweep from a
 * stale one), with deadlines generous enough for a loaded machine; and returns how long it took
 * and the bound guaranteed for it, scaled to the timings used. The tests print the times;
 * measure.js, run on a quiet machine, compares them with the bounds.
 */
const assert = require('node:assert/strict');
const { startRedis, waitFor, SCRIPT_ENGINE, keySlot, countSweep } = require('./shared');
const { startDemo } = require('./demo-server');
const { startClientProcess } = require('./client-processes');
const { TcpProxy } = require('./tcp-proxy');

/** The timings every situation uses unless it says otherwise. */
const TIMINGS = {
  pingIntervalMs: 1000,
  pingTimeoutMs: 1000,
  heartbeatIntervalMs: 500,
  heartbeatJitterMs: 100,
  participantsIntervalMs: 250,
  sweepIntervalMs: 100,
};

/**
 * Production timings: Socket.IO's defaults, the page's heartbeat every 25-30 s, and the
 * module's defaults.
 */
const PRODUCTION_TIMINGS = {
  pingIntervalMs: 25000,
  pingTimeoutMs: 20000,
  heartbeatIntervalMs: 25000,
  heartbeatJitterMs: 5000,
  participantsIntervalMs: 250,
  sweepIntervalMs: 1000,
  staleAfterS: 90,
};

/** Margin for process scheduling on a loaded machine, added to every bound. */
const SLACK_MS = 1500;

const ROOM = 'live';

/** The sweep counters of `INFO presence` in `info` (the text of one server's reply). */
function sweepCounters(info) {
  const field = (name) => Number((new RegExp(`^presence_${name}:(\\d+)`, 'm').exec(String(info)) ?? [])[1] ?? NaN);
  return { swept: field('swept'), nodeDown: field('swept_node_down') };
}

/** The sum of the sweep counters of several servers. */
function addCounters(list) {
  return list.reduce((sum, one) => ({ swept: sum.swept + one.swept, nodeDown: sum.nodeDown + one.nodeDown }), { swept: 0, nodeDown: 0 });
}

/**
 * Where the situations run by default: a redis-server of their own each, with the module
 * configured for the situation.
 */
const STANDALONE = {
  /** @param {number} staleAfterS */
  async start(staleAfterS) {
    const redis = await startRedis({ staleAfter: staleAfterS, sweepIntervalMs: TIMINGS.sweepIntervalMs });
    const admin = await redis.client();
    return {
      demoOptions: { redisUrl: redis.url },
      send: (args) => admin.sendCommand(args),
      sweeps: async () => sweepCounters(await admin.sendCommand(['INFO', 'presence'])),
      stop: () => redis.stop(),
    };
  },
};

/**
 * Where the situations run on a Redis Cluster (see `startRedisCluster`), shared by them: the
 * demo gets REDIS_CLUSTER, each situation sets its stale-after on every node, and its end
 * empties every master.
 * @param {{urls: string[], running: () => Array<{port: number}>, admin: (port: number) => Promise<any>, client: () => Promise<any>}} cluster
 */
function onCluster(cluster) {
  return {
    /** @param {number} staleAfterS */
    async start(staleAfterS) {
      const admin = await cluster.client();
      if (SCRIPT_ENGINE) return onClusterScript(cluster, admin, staleAfterS);
      for (const node of cluster.running()) {
        await (await cluster.admin(node.port)).sendCommand(['CONFIG', 'SET', 'presence.stale-after', String(staleAfterS)]);
      }
      return {
        demoOptions: { redisCluster: cluster.urls },
        send: (args) => admin.sendCommand(args[1], false, args),
        /** Summed over the masters: the sweeper runs there. */
        async sweeps() {
          const counters = [];
          for (const node of cluster.running()) {
            const client = await cluster.admin(node.port);
            if ((await client.sendCommand(['ROLE']))[0] === 'master') counters.push(sweepCounters(await client.sendCommand(['INFO', 'presence'])));
          }
          return addCounters(counters);
        },
        async stop() {
          admin.destroy();
          for (const node of cluster.running()) {
            const client = await cluster.admin(node.port);
            if ((await client.sendCommand(['ROLE']))[0] === 'master') await client.sendCommand(['FLUSHALL']);
          }
        },
      };
    },
  };
}

/**
 * {@link onCluster}'s backend for the script engine: the demo servers get the situation's
 * stale-after, and the sweep counters, which the module keeps in `INFO presence`, are counted
 * from the room's events (its sharded channel on its master).
 */
async function onClusterScript(cluster, admin, staleAfterS) {
  const counts = { swept: 0, nodeDown: 0 };
  const subscriber = admin.duplicate();
  subscriber.on('error', () => {});
  await subscriber.connect();
  await subscriber.sSubscribe(`__presence@0__:{${ROOM}}`, (message) => {
    const { event, reason } = JSON.parse(message);
    if (event === 'force-leave') countSweep(counts, reason);
  });
  return {
    demoOptions: { redisCluster: cluster.urls },
    demoEnv: { PRESENCE_STALE_AFTER: staleAfterS },
    // PRESENCE.LIST and COUNT as the library's calls, on the room's master (see engine.js).
    send: async (args) => (await cluster.admin(await cluster.masterOf(keySlot(args[1])))).sendCommand(args),
    sweeps: async () => ({ ...counts }),
    async stop() {
      subscriber.destroy();
      admin.destroy();
      for (const node of cluster.running()) {
        const client = await cluster.admin(node.port);
        if ((await client.sendCommand(['ROLE']))[0] === 'master') await client.sendCommand(['FLUSHALL']);
      }
    },
  };
}

/**
 * Starts Redis (on `backend`) and one demo server with the given stale-after; `run(context)`
 * does the rest. Everything started is stopped afterwards, whatever happens.
 */
async function withStack(staleAfterS, run, backend) {
  const redis = await backend.start(staleAfterS);
  const cleanups = [];
  const context = {
    demo: null,
    /** Registers something to close at the end (a client, a proxy, a process). */
    defer(cleanup) {
      cleanups.push(cleanup);
    },
    /** The module's sweep counters now: `swept` (every removal by the sweeper) and `nodeDown`. */
    sweeps: () => redis.sweeps(),
    /** The live users of the room according to Redis, with the count. */
    async truth() {
      const [users, count] = await Promise.all([redis.send(['PRESENCE.LIST', ROOM]), redis.send(['PRESENCE.COUNT', ROOM])]);
      return { users, count: Number(count) };
    },
  };
  try {
    context.demo = await startDemo({ ...redis.demoOptions, env: { ...demoEnv(), ...redis.demoEnv } });
    cleanups.push(() => context.demo.stop('SIGKILL'));
    return await run(context);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await redis.stop();
  }
}

function demoEnv() {
  return {
    PING_INTERVAL_MS: TIMINGS.pingIntervalMs,
    PING_TIMEOUT_MS: TIMINGS.pingTimeoutMs,
    PARTICIPANTS_INTERVAL_MS: TIMINGS.participantsIntervalMs,
  };
}

async function connect(context, user, options) {
  const client = await context.demo.connect(user, {
    heartbeatIntervalMs: TIMINGS.heartbeatIntervalMs,
    heartbeatJitterMs: TIMINGS.heartbeatJitterMs,
    ...options,
  });
  context.defer(() => client.close());
  return client;
}

function sameUsers(truth, users) {
  return JSON.stringify(truth.users) === JSON.stringify([...users].sort()) && truth.count === users.length;
}

/**
 * The server restarts gracefully (SIGTERM, then started again): it leaves every presence
 * before exiting, so Redis is right at once; the users, reconnected, are told they are out.
 */
async function serverRestart(backend = STANDALONE) {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const alice = await connect(context, 'alice');
    const bob = await connect(context, 'bob');
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.waitForUsers(ROOM, ['alice', 'bob']);

    const sweptBefore = await context.sweeps();
    const start = Date.now();
    const stopped = context.demo.stop('SIGTERM');
    await waitFor(async () => sameUsers(await context.truth(), []), { timeoutMs: 30000, message: 'an empty room in Redis' });
    const measuredMs = Date.now() - start;
    assert.equal(await stopped, 0, 'the server exits with status 0');
    assert.equal((await context.sweeps()).swept, sweptBefore.swept, 'left by the server on SIGTERM, not swept after stale-after');

    await context.demo.start();
    for (const client of [alice, bob]) assert.equal((await client.waitForForceLeave(ROOM, 30000)).reason, 'not-present');
    const carol = await connect(context, 'carol');
    assert.deepEqual((await carol.join(ROOM)).users, ['carol'], 'nobody is left over after the restart');

    return {
      situation: 'server restarts (graceful: SIGTERM, then started again)',
      specBound: 'immediately (disconnects → LEAVE)',
      staleAfterS,
      boundMs: SLACK_MS,
      measuredMs,
      what: 'SIGTERM → Redis list and count empty',
    };
  }, backend);
}

/**
 * The server is killed (SIGKILL) and started again. Users that reconnect get
 * `room:force-leave` and join again; the presences of those that never come back turn stale
 * and are swept.
 */
async function serverCrash(backend = STANDALONE) {
  const staleAfterS = 3;
  return withStack(staleAfterS, async (context) => {
    const alice = await connect(context, 'alice');
    const bob = await startClientProcess(context.demo, 'bob', ROOM);
    context.defer(bob.kill);
    await alice.join(ROOM);
    await alice.waitForUsers(ROOM, ['alice', 'bob']);

    const sweptBefore = await context.sweeps();
    const start = Date.now();
    await context.demo.stop('SIGKILL');
    await bob.kill();
    await context.demo.start();

    const popup = await alice.waitForForceLeave(ROOM, 30000);
    assert.equal(popup.reason, 'not-present');
    assert.equal((await alice.join(ROOM)).ok, true);
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const rightAt = await carol.waitForUsers(ROOM, ['alice', 'carol'], 60000);
    assert.ok(sameUsers(await context.truth(), ['alice', 'carol']));
    await waitFor(async () => (await context.sweeps()).swept > sweptBefore.swept, {
      timeoutMs: 30000,
      message: "bob's presence, whose app and server died, swept",
    });

    return {
      situation: 'server crashes (SIGKILL) and restarts',
      specBound: '`stale-after` (then everyone on it is force-left)',
      staleAfterS,
      boundMs: staleAfterS * 1000 + TIMINGS.sweepIntervalMs + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: `SIGKILL → list right for a user on the restarted server (the reconnected user saw the popup after ${popup.at - start} ms)`,
    };
  }, backend);
}

/** A user's app is force-closed: its process is killed, the kernel closes its connection. */
async function appForceClosed(backend = STANDALONE) {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const bob = await startClientProcess(context.demo, 'bob', ROOM);
    context.defer(bob.kill);
    await carol.waitForUsers(ROOM, ['bob', 'carol']);

    const sweptBefore = await context.sweeps();
    const start = Date.now();
    await bob.kill();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], 30000);
    assert.ok(sameUsers(await context.truth(), ['carol']));
    assert.equal((await context.sweeps()).swept, sweptBefore.swept, 'left on the disconnect, not swept after stale-after');

    return {
      situation: 'app force-closed (client process killed)',
      specBound: 'the disconnect, about a second',
      staleAfterS,
      boundMs: 1000 + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'SIGKILL of the client → list right for another user',
    };
  }, backend);
}

/** A user's network drops silently: a proxy stops forwarding without closing anything. */
async function networkDrop(backend = STANDALONE) {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const proxy = new TcpProxy(context.demo.port);
    const proxyPort = await proxy.start();
    context.defer(() => proxy.close());
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const dave = await connect(context, 'dave', { url: `http://127.0.0.1:${proxyPort}` });
    await dave.join(ROOM);
    await carol.waitForUsers(ROOM, ['carol', 'dave']);

    const sweptBefore = await context.sweeps();
    const start = Date.now();
    proxy.cut();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], 30000);
    assert.ok(sameUsers(await context.truth(), ['carol']));
    assert.equal((await context.sweeps()).swept, sweptBefore.swept, "left on Socket.IO's ping timeout, not swept after stale-after");

    return {
      situation: 'network drops silently (proxy stops forwarding)',
      specBound: "Socket.IO's ping timeout, at worst `stale-after`",
      staleAfterS,
      boundMs: TIMINGS.pingIntervalMs + TIMINGS.pingTimeoutMs + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'cut → list right for another user',
    };
  }, backend);
}

/** A user closes the page without clicking leave: the socket closes. */
async function closedWithoutLeaving(backend = STANDALONE) {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const erin = await connect(context, 'erin');
    await erin.join(ROOM);
    await carol.waitForUsers(ROOM, ['carol', 'erin']);

    const sweptBefore = await context.sweeps();
    const start = Date.now();
    erin.close();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], 30000);
    assert.ok(sameUsers(await context.truth(), ['carol']));
    assert.equal((await context.sweeps()).swept, sweptBefore.swept, 'left on the disconnect, not swept after stale-after');

    return {
      situation: 'user does not click leave (closes the page)',
      specBound: 'the disconnect, about a second',
      staleAfterS,
      boundMs: 1000 + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'socket closed → list right for another user',
    };
  }, backend);
}

/**
 * One of two demo servers behind the Redis adapter is killed (SIGKILL), and with `restart`
 * started again at once; production timings but for the node lease `leaseMs`. The users of
 * the other server see the killed server's users leave within the lease plus one sweep
 * interval; with `restart`, the killed server's users, reconnected, are told they are out.
 * @param {{leaseMs: number, restart: boolean}} options
 */
async function serverCrashWithLease({ leaseMs, restart }) {
  const { staleAfterS, sweepIntervalMs, participantsIntervalMs } = PRODUCTION_TIMINGS;
  const redis = await startRedis({ staleAfter: staleAfterS, sweepIntervalMs });
  const servers = [];
  const clients = [];
  const connect = async (server, user, socketOptions) => {
    const client = await server.connect(user, {
      heartbeatIntervalMs: PRODUCTION_TIMINGS.heartbeatIntervalMs,
      heartbeatJitterMs: PRODUCTION_TIMINGS.heartbeatJitterMs,
      socketOptions,
    });
    clients.push(client);
    return client;
  };
  try {
    const admin = await redis.client();
    const env = { NODE_LEASE_MS: leaseMs };
    const [crashing, staying] = await Promise.all([startDemo({ redisUrl: redis.url, env }), startDemo({ redisUrl: redis.url, env })]);
    servers.push(crashing, staying);
    const reconnection = { reconnection: restart };
    const alice = await connect(crashing, 'alice', reconnection);
    const amy = await connect(crashing, 'amy', reconnection);
    const bob = await connect(staying, 'bob');
    for (const client of [alice, amy, bob]) assert.equal((await client.join(ROOM)).ok, true);
    await bob.waitForUsers(ROOM, ['alice', 'amy', 'bob']);

    const sweeps = async () => sweepCounters(await admin.sendCommand(['INFO', 'presence']));
    const sweptBefore = await sweeps();
    const start = Date.now();
    await crashing.stop('SIGKILL');
    if (restart) await crashing.start();
    // Within a minute, and so long before stale-after (90 s): through the node lease.
    const rightAt = await bob.waitForUsers(ROOM, ['bob'], 60000);
    const truth = await Promise.all([admin.sendCommand(['PRESENCE.LIST', ROOM]), admin.sendCommand(['PRESENCE.COUNT', ROOM])]);
    assert.deepEqual(truth, [['bob'], 1], 'Redis agrees');
    assert.deepEqual(bob.rawForceLeaves, [], 'a live user is never force-left');
    await waitFor(async () => (await sweeps()).nodeDown - sweptBefore.nodeDown === 2, {
      timeoutMs: 30000,
      message: "the crashed server's two presences removed as node-down",
    });

    let popup = '';
    if (restart) {
      const event = await alice.waitForForceLeave(ROOM, 30000);
      assert.equal(event.reason, 'not-present');
      popup = ` (a reconnected user of the restarted server saw the popup after ${event.at - start} ms)`;
      assert.equal((await alice.join(ROOM)).ok, true, 'the restarted server serves');
      await bob.waitForUsers(ROOM, ['alice', 'bob']);
    }
    const dan = await connect(staying, 'dan');
    assert.equal((await dan.join(ROOM)).ok, true, 'the other server keeps serving');

    return {
      situation: restart ? 'server crashes (SIGKILL) and restarts at once, one of two' : 'server crashes (SIGKILL), no restart, one of two',
      specBound: `node lease (${leaseMs / 1000} s) + one sweep interval`,
      staleAfterS,
      leaseMs,
      boundMs: leaseMs + sweepIntervalMs + participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: `SIGKILL → list right for a user of the other server${popup}`,
    };
  } finally {
    for (const client of clients) client.close();
    for (const server of servers) await server.stop('SIGKILL');
    await redis.stop();
  }
}

/** The five situations, in the order of the requirement. */
const SITUATIONS = [serverRestart, serverCrash, appForceClosed, networkDrop, closedWithoutLeaving];

module.exports = { SITUATIONS, TIMINGS, PRODUCTION_TIMINGS, SLACK_MS, serverCrashWithLease, onCluster, sweepCounters };
