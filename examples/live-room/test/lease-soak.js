'use strict';

/*
 * A soak of the node lease under normal traffic: redis-server with the presence module
 * (production configs), two demo servers behind the Redis adapter with a node lease of 3 s,
 * and a few hundred socket.io-client users in this process that join a room, heartbeat every
 * 25-30 s like the page, and now and then leave and join again. Nothing in it deserves a
 * force-leave, so it counts as false every `room:force-leave` and every heartbeat answered
 * `{ok: false}`, and also failed joins and leaves, unexpected disconnects, leases lost (from
 * the servers' logs), and differences between Redis's lists and what the users did.
 *
 *   node examples/live-room/test/lease-soak.js --seconds 600 [--clients 300] [--rooms 10] [--lease-ms 3000]
 *
 * Environment: REDIS_SERVER and PRESENCE_MODULE, as for the tests. Prints one summary line
 * (and, on a terminal, one progress line a minute on stderr); exits with status 1 when
 * anything false or wrong was seen, 0 otherwise; SIGINT and SIGTERM stop it and the processes
 * it started. Light on CPU: it is meant to run beside other work.
 */
const { io } = require('socket.io-client');
const { createPresenceClient } = require('@presence/socketio/client');
const { startRedis } = require('./support/shared');
const { startDemo } = require('./support/demo-server');

const HEARTBEAT_INTERVAL_MS = 25000;
const HEARTBEAT_JITTER_MS = 5000;
/** One user leaves (and joins again 1-10 s later) every this many milliseconds. */
const CHURN_EVERY_MS = 2000;
/** Redis's lists are compared with the users' state every this many milliseconds. */
const CHECK_EVERY_MS = 10000;
/** Users connect and join this many at a time, to spread the start. */
const START_BATCH = 20;

/**
 * Reads `--name value` options, every value a positive integer; exits with status 2 and the
 * usage on anything else.
 */
function readArgs(argv) {
  const options = { seconds: 600, clients: 300, rooms: 10, 'lease-ms': 3000 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    const value = Number(argv[i + 1]);
    if (!(name in options) || !Number.isInteger(value) || value < 1) {
      console.error(`usage: lease-soak.js [--seconds N] [--clients N] [--rooms N] [--lease-ms N] (got ${argv.slice(i, i + 2).join(' ')})`);
      process.exit(2);
    }
    options[name] = value;
  }
  return options;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What went wrong, counted, with the first few described. */
class Tally {
  constructor() {
    this.counts = { falseForceLeaves: 0, failedRequests: 0, disconnects: 0, leasesLost: 0, listErrors: 0, leftBehind: 0 };
    this.examples = [];
  }

  add(kind, description) {
    this.counts[kind] += 1;
    if (this.examples.length < 10) this.examples.push(`${new Date().toISOString()} ${kind}: ${description}`);
  }

  get total() {
    return Object.values(this.counts).reduce((sum, count) => sum + count, 0);
  }
}

/**
 * One user: a socket.io-client socket with the presence client on it, whose heartbeat
 * acknowledgements are watched. `state` is `out`, `joining`, `in` or `leaving`; `version`
 * changes with every change of state.
 */
class SoakUser {
  constructor({ server, user, roomId, tally, stats }) {
    this.server = server;
    this.user = user;
    this.roomId = roomId;
    this.tally = tally;
    this.stats = stats;
    this.state = 'out';
    this.version = 0;
    this.closing = false;
  }

  async connect() {
    const token = await this.server.token(this.user);
    this.socket = io(this.server.url, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
    this.socket.on('room:force-leave', (event) => this.tally.add('falseForceLeaves', `${this.user} in ${event.roomId}: ${event.reason}`));
    this.socket.on('disconnect', (reason) => {
      if (!this.closing) this.tally.add('disconnects', `${this.user}: ${reason}`);
    });
    this.presence = createPresenceClient(this.#watched(this.socket), {
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      heartbeatJitterMs: HEARTBEAT_JITTER_MS,
    });
    await new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('connect_error', reject);
    });
  }

  /** The socket as the presence client sees it, with every heartbeat acknowledgement checked. */
  #watched(socket) {
    return {
      get connected() {
        return socket.connected;
      },
      on: (event, listener) => socket.on(event, listener),
      off: (event, listener) => socket.off(event, listener),
      timeout: (ms) => ({
        emitWithAck: async (event, payload) => {
          let ack;
          try {
            ack = await socket.timeout(ms).emitWithAck(event, payload);
          } catch (err) {
            // A heartbeat still waiting for its acknowledgement when the soak closes the socket
            // at its end is rejected ("socket has been disconnected"): no force-leave.
            if (event === 'room:heartbeat' && !this.closing) {
              this.tally.add('falseForceLeaves', `${this.user}: heartbeat of ${payload.roomId}: ${err.message}`);
            }
            throw err;
          }
          if (event === 'room:heartbeat') {
            if (ack && ack.ok) this.stats.heartbeats += 1;
            else this.tally.add('falseForceLeaves', `${this.user}: heartbeat of ${payload.roomId} answered ${JSON.stringify(ack)}`);
          }
          return ack;
        },
      }),
    };
  }

  async join() {
    this.#to('joining');
    const ack = await this.presence.join(this.roomId);
    if (!ack.ok) {
      this.tally.add('failedRequests', `${this.user}: join answered ${JSON.stringify(ack)}`);
      this.#to('out');
      return;
    }
    this.#to('in');
  }

  async leave() {
    this.#to('leaving');
    const ack = await this.presence.leave(this.roomId);
    if (!ack.ok) this.tally.add('failedRequests', `${this.user}: leave answered ${JSON.stringify(ack)}`);
    this.#to('out');
  }

  close() {
    this.closing = true;
    this.presence.close();
    this.socket.close();
  }

  #to(state) {
    this.state = state;
    this.version += 1;
  }
}

/**
 * Compares each room's list in Redis with the users that were steadily in (must be listed)
 * or steadily out (must not be) while it was read.
 */
async function checkLists(admin, users, rooms, tally) {
  const before = users.map((user) => [user.state, user.version]);
  const lists = await Promise.all(rooms.map((roomId) => admin.sendCommand(['PRESENCE.LIST', roomId])));
  const listed = new Map(rooms.map((roomId, i) => [roomId, new Set(lists[i])]));
  users.forEach((user, i) => {
    const [state, version] = before[i];
    if (user.version !== version || (state !== 'in' && state !== 'out')) return;
    const present = listed.get(user.roomId).has(user.user);
    if (state === 'in' && !present) tally.add('listErrors', `${user.user} is in ${user.roomId} but Redis does not list it`);
    if (state === 'out' && present) tally.add('listErrors', `${user.user} left ${user.roomId} but Redis still lists it`);
  });
}

/** Counts the `node lease lost` lines a demo server logs from now on. */
function watchLeaseLosses(server, tally) {
  for (const stream of [server.process.stdout, server.process.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (line.includes('node lease lost')) tally.add('leasesLost', `port ${server.port}: ${line}`);
      }
    });
  }
}

async function main(options) {
  const tally = new Tally();
  const stats = { heartbeats: 0, cycles: 0, checks: 0 };
  const redis = await startRedis({ staleAfter: 90, sweepIntervalMs: 1000 });
  const servers = [];
  const users = [];
  try {
    const admin = await redis.client();
    const env = { NODE_LEASE_MS: options['lease-ms'] };
    servers.push(...(await Promise.all([startDemo({ redisUrl: redis.url, env }), startDemo({ redisUrl: redis.url, env })])));
    for (const server of servers) watchLeaseLosses(server, tally);
    const rooms = Array.from({ length: options.rooms }, (_, i) => `soak-${i}`);
    for (let i = 0; i < options.clients; i += 1) {
      users.push(new SoakUser({ server: servers[i % 2], user: `user-${i}`, roomId: rooms[i % rooms.length], tally, stats }));
    }
    for (let i = 0; i < users.length; i += START_BATCH) {
      await Promise.all(
        users.slice(i, i + START_BATCH).map(async (user) => {
          await user.connect();
          await user.join();
        }),
      );
    }

    const started = Date.now();
    const end = started + options.seconds * 1000;
    const churning = new Set();
    let nextCheck = started + CHECK_EVERY_MS;
    let nextProgress = started + 60000;
    while (Date.now() < end) {
      await sleep(CHURN_EVERY_MS);
      const candidates = users.filter((user) => user.state === 'in' && !churning.has(user));
      const user = candidates[Math.floor(Math.random() * candidates.length)];
      if (user) {
        churning.add(user);
        user
          .leave()
          .then(() => sleep(1000 + Math.random() * 9000))
          .then(() => user.join())
          .then(() => {
            stats.cycles += 1;
          })
          .catch((err) => tally.add('failedRequests', `${user.user}: ${err.message}`))
          .finally(() => churning.delete(user));
      }
      if (Date.now() >= nextCheck) {
        await checkLists(admin, users, rooms, tally);
        stats.checks += 1;
        nextCheck += CHECK_EVERY_MS;
      }
      if (process.stderr.isTTY && Date.now() >= nextProgress) {
        process.stderr.write(`lease-soak: ${Math.round((Date.now() - started) / 1000)} s, ${tally.total} problem(s) so far\n`);
        nextProgress += 60000;
      }
    }
    while (churning.size > 0) await sleep(200);
    await checkLists(admin, users, rooms, tally);
    stats.checks += 1;

    for (const user of users) user.close();
    for (const server of servers) {
      const code = await server.stop('SIGTERM');
      if (code !== 0) tally.add('leftBehind', `demo server on port ${server.port} exited with status ${code}`);
    }
    const keys = await admin.sendCommand(['KEYS', '*presence*']);
    for (const key of keys) tally.add('leftBehind', `${key} still in Redis after both servers stopped`);

    const { counts } = tally;
    console.log(
      `lease-soak: ${options.seconds} s, 2 demo servers with a ${options['lease-ms']} ms node lease, ${options.clients} users in ${options.rooms} rooms: ` +
        `${counts.falseForceLeaves} false force-leaves, ${counts.failedRequests} failed joins or leaves, ${counts.disconnects} unexpected disconnects, ` +
        `${counts.leasesLost} leases lost, ${counts.listErrors} list differences in ${stats.checks} checks, ${counts.leftBehind} keys or exits left wrong; ` +
        `${stats.heartbeats} heartbeats answered ok, ${stats.cycles} leave and join cycles: ${tally.total === 0 ? 'OK' : 'FAILED'}`,
    );
    for (const example of tally.examples) console.error(`lease-soak: ${example}`);
    return tally.total === 0 ? 0 : 1;
  } finally {
    for (const user of users) if (!user.closing && user.socket) user.close();
    for (const server of servers) await server.stop('SIGKILL');
    await redis.stop();
  }
}

// Exiting through process.exit runs the test support's exit handler, which kills the servers.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

main(readArgs(process.argv.slice(2))).then(
  (status) => process.exit(status),
  (err) => {
    console.error(`lease-soak: ${err.stack}`);
    process.exit(1);
  },
);
