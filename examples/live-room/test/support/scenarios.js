'use strict';

/*
 * The five situations of the requirement, each run against real processes (redis-server with
 * the presence module, `node server.js`, socket.io-client users) with short timings. Each
 * returns how long the participant list and the viewer count took to be right again, and the
 * bound guaranteed for it, scaled to the timings used. Used by the tests and by
 * measure.js.
 */
const assert = require('node:assert/strict');
const { startRedis, waitFor } = require('./shared');
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

/** Margin for process scheduling on a loaded machine, added to every bound. */
const SLACK_MS = 1500;

const ROOM = 'live';

/**
 * Starts Redis and one demo server with the given stale-after; `run(context)` does the rest.
 * Everything started is stopped afterwards, whatever happens.
 */
async function withStack(staleAfterS, run) {
  const redis = await startRedis({ staleAfter: staleAfterS, sweepIntervalMs: TIMINGS.sweepIntervalMs });
  const cleanups = [];
  const context = {
    admin: await redis.client(),
    demo: null,
    /** Registers something to close at the end (a client, a proxy, a process). */
    defer(cleanup) {
      cleanups.push(cleanup);
    },
    /** The live users of the room according to Redis, with the count. */
    async truth() {
      const [users, count] = await Promise.all([
        context.admin.sendCommand(['PRESENCE.LIST', ROOM]),
        context.admin.sendCommand(['PRESENCE.COUNT', ROOM]),
      ]);
      return { users, count: Number(count) };
    },
  };
  try {
    context.demo = await startDemo({ redisUrl: redis.url, env: demoEnv() });
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
async function serverRestart() {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const alice = await connect(context, 'alice');
    const bob = await connect(context, 'bob');
    await alice.join(ROOM);
    await bob.join(ROOM);
    await alice.waitForUsers(ROOM, ['alice', 'bob']);

    const start = Date.now();
    const stopped = context.demo.stop('SIGTERM');
    await waitFor(async () => sameUsers(await context.truth(), []), { timeoutMs: 15000, message: 'an empty room in Redis' });
    const measuredMs = Date.now() - start;
    assert.equal(await stopped, 0, 'the server exits with status 0');

    await context.demo.start();
    for (const client of [alice, bob]) assert.equal((await client.waitForForceLeave(ROOM, 15000)).reason, 'not-present');
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
  });
}

/**
 * The server is killed (SIGKILL) and started again. Users that reconnect get
 * `room:force-leave` and join again; the presences of those that never come back turn stale
 * and are swept.
 */
async function serverCrash() {
  const staleAfterS = 3;
  return withStack(staleAfterS, async (context) => {
    const alice = await connect(context, 'alice');
    const bob = await startClientProcess(context.demo, 'bob', ROOM);
    context.defer(bob.kill);
    await alice.join(ROOM);
    await alice.waitForUsers(ROOM, ['alice', 'bob']);

    const start = Date.now();
    await context.demo.stop('SIGKILL');
    await bob.kill();
    await context.demo.start();

    const popup = await alice.waitForForceLeave(ROOM, 15000);
    assert.equal(popup.reason, 'not-present');
    assert.equal((await alice.join(ROOM)).ok, true);
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const rightAt = await carol.waitForUsers(ROOM, ['alice', 'carol'], 20000);
    assert.ok(sameUsers(await context.truth(), ['alice', 'carol']));

    return {
      situation: 'server crashes (SIGKILL) and restarts',
      specBound: '`stale-after` (then everyone on it is force-left)',
      staleAfterS,
      boundMs: staleAfterS * 1000 + TIMINGS.sweepIntervalMs + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: `SIGKILL → list right for a user on the restarted server (the reconnected user saw the popup after ${popup.at - start} ms)`,
    };
  });
}

/** A user's app is force-closed: its process is killed, the kernel closes its connection. */
async function appForceClosed() {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const bob = await startClientProcess(context.demo, 'bob', ROOM);
    context.defer(bob.kill);
    await carol.waitForUsers(ROOM, ['bob', 'carol']);

    const start = Date.now();
    await bob.kill();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], 15000);
    assert.ok(sameUsers(await context.truth(), ['carol']));

    return {
      situation: 'app force-closed (client process killed)',
      specBound: 'the disconnect, about a second',
      staleAfterS,
      boundMs: 1000 + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'SIGKILL of the client → list right for another user',
    };
  });
}

/** A user's network drops silently: a proxy stops forwarding without closing anything. */
async function networkDrop() {
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

    const start = Date.now();
    proxy.cut();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], staleAfterS * 1000 + 10000);
    assert.ok(sameUsers(await context.truth(), ['carol']));

    return {
      situation: 'network drops silently (proxy stops forwarding)',
      specBound: "Socket.IO's ping timeout, at worst `stale-after`",
      staleAfterS,
      boundMs: TIMINGS.pingIntervalMs + TIMINGS.pingTimeoutMs + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'cut → list right for another user',
    };
  });
}

/** A user closes the page without clicking leave: the socket closes. */
async function closedWithoutLeaving() {
  const staleAfterS = 10;
  return withStack(staleAfterS, async (context) => {
    const carol = await connect(context, 'carol');
    await carol.join(ROOM);
    const erin = await connect(context, 'erin');
    await erin.join(ROOM);
    await carol.waitForUsers(ROOM, ['carol', 'erin']);

    const start = Date.now();
    erin.close();
    const rightAt = await carol.waitForUsers(ROOM, ['carol'], 15000);
    assert.ok(sameUsers(await context.truth(), ['carol']));

    return {
      situation: 'user does not click leave (closes the page)',
      specBound: 'the disconnect, about a second',
      staleAfterS,
      boundMs: 1000 + TIMINGS.participantsIntervalMs + SLACK_MS,
      measuredMs: rightAt - start,
      what: 'socket closed → list right for another user',
    };
  });
}

/** The five situations, in the order of the requirement. */
const SITUATIONS = [serverRestart, serverCrash, appForceClosed, networkDrop, closedWithoutLeaving];

module.exports = { SITUATIONS, TIMINGS };
