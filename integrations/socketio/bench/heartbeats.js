'use strict';

/**
 * Socket.IO heartbeat throughput: how many `room:heartbeat` acknowledgements per second one
 * Socket.IO server process sustains, and the CPU that process uses for them.
 *
 * It starts a private redis-server with the presence module (env REDIS_SERVER, default
 * `redis-server`; env PRESENCE_MODULE, default `<repo>/target/release/libredis_presence.so`),
 * then `node examples/live-room/server.js` as a child process. In this process, N
 * socket.io-client users each log in (`GET /api/token`), join room `bench` and send
 * `room:heartbeat` again as soon as the previous one is acknowledged. After a one-second
 * warm-up, it counts the `{ok: true}` acknowledgements over the measured window and reads the
 * server's CPU time from /proc/<pid>/stat, then prints a Markdown table.
 *
 * Usage: node integrations/socketio/bench/heartbeats.js [--clients N] [--seconds D] [--quick]
 *   --clients N   simulated users (default 200; 50 with --quick)
 *   --seconds D   measured window in seconds (default 10; 3 with --quick)
 *
 * Exits 0 when every acknowledgement was `{ok: true}`, 1 with one line on stderr otherwise.
 */

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { io } = require('socket.io-client');
const { startRedis } = require('../test/support/redis-server');
const { track, stopProcess, waitForLine } = require('../test/support/processes');

const REPO = path.resolve(__dirname, '..', '..', '..');
const SERVER_SCRIPT = path.join(REPO, 'examples', 'live-room', 'server.js');
const ROOM = 'bench';
const WARMUP_MS = 1000;
const ACK_TIMEOUT_MS = 5000;

/**
 * The command line options.
 * @returns {{clients: number, seconds: number}}
 */
function readOptions() {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
    },
  });
  const clients = positiveInteger('--clients', values.clients, values.quick ? 50 : 200);
  const seconds = positiveInteger('--seconds', values.seconds, values.quick ? 3 : 10);
  return { clients, seconds };
}

/**
 * Parses a positive integer option.
 * @param {string} name
 * @param {string | undefined} raw
 * @param {number} fallback
 * @returns {number}
 */
function positiveInteger(name, raw, fallback) {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, else 100). */
function clockTicksPerSecond() {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/**
 * User plus system CPU time of a process, in clock ticks.
 * @param {number} pid
 * @returns {number}
 */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, utime field 14 and stime field 15 of proc(5).
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Starts the live-room server against `redisUrl`; resolves with the process and its URL.
 * @param {string} redisUrl
 * @returns {Promise<{child: import('node:child_process').ChildProcess, url: string}>}
 */
async function startServer(redisUrl) {
  const env = {
    ...process.env,
    PORT: '0',
    REDIS_URL: redisUrl,
    SESSION_SECRET: 'presence-bench-secret',
    HEARTBEAT_INTERVAL_MS: '3600000',
  };
  const child = track(spawn(process.execPath, [SERVER_SCRIPT], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let errors = '';
  child.stderr.on('data', (chunk) => {
    errors = (errors + chunk).slice(-4000);
  });
  try {
    const [, url] = await waitForLine(child, child.stdout, /listening on (http:\/\/\S+)/, 15000, 'live-room server');
    return { child, url: url.replace('//localhost:', '//127.0.0.1:') };
  } catch (err) {
    throw new Error(`${err.message}\n${errors}`.trim());
  }
}

/**
 * Logs `user` in and connects a socket with its token; resolves once connected.
 * @param {string} url
 * @param {string} user
 * @returns {Promise<import('socket.io-client').Socket>}
 */
async function connectUser(url, user) {
  const response = await fetch(`${url}/api/token?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`GET /api/token for ${user}: HTTP ${response.status}`);
  const { token } = await response.json();
  const socket = io(url, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (err) => reject(new Error(`${user} could not connect: ${err.message}`)));
  });
  return socket;
}

/**
 * Connects `count` users and joins each to the bench room.
 * @param {string} url
 * @param {number} count
 * @param {import('socket.io-client').Socket[]} sockets filled as they connect, for cleanup
 */
async function connectAndJoin(url, count, sockets) {
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const socket = await connectUser(url, `bench-user-${i}`);
      sockets.push(socket);
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('room:join', { roomId: ROOM });
      if (!ack || ack.ok !== true) throw new Error(`room:join of bench-user-${i} failed: ${JSON.stringify(ack)}`);
    }),
  );
}

/**
 * Sends heartbeats on `socket`, the next one as soon as the previous is acknowledged, until
 * `tally.running` turns false. Counts `{ok: true}` acknowledgements and keeps the errors.
 * @param {import('socket.io-client').Socket} socket
 * @param {{running: boolean, acks: number, errors: string[]}} tally
 */
async function heartbeatLoop(socket, tally) {
  while (tally.running) {
    try {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('room:heartbeat', { roomId: ROOM });
      if (ack && ack.ok === true) tally.acks += 1;
      else tally.errors.push(`acknowledgement ${JSON.stringify(ack)}`);
    } catch (err) {
      tally.errors.push(err.message);
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the heartbeat loops: a warm-up, then the measured window of `seconds`.
 * @param {import('socket.io-client').Socket[]} sockets
 * @param {number} serverPid
 * @param {number} seconds
 * @returns {Promise<{acks: number, cpuSeconds: number, clientCpuSeconds: number, elapsedSeconds: number, errors: string[]}>}
 */
async function measure(sockets, serverPid, seconds) {
  const tally = { running: true, acks: 0, errors: [] };
  const loopPromises = sockets.map((socket) => heartbeatLoop(socket, tally));
  await sleep(WARMUP_MS);
  const start = { acks: tally.acks, ticks: cpuTicks(serverPid), own: process.cpuUsage(), at: process.hrtime.bigint() };
  await sleep(seconds * 1000);
  const end = { acks: tally.acks, ticks: cpuTicks(serverPid), own: process.cpuUsage(start.own), at: process.hrtime.bigint() };
  tally.running = false;
  await Promise.all(loopPromises);
  return {
    acks: end.acks - start.acks,
    cpuSeconds: (end.ticks - start.ticks) / clockTicksPerSecond(),
    clientCpuSeconds: (end.own.user + end.own.system) / 1e6,
    elapsedSeconds: Number(end.at - start.at) / 1e9,
    errors: tally.errors,
  };
}

/**
 * The Markdown report.
 * @param {{clients: number, seconds: number}} options
 * @param {{acks: number, cpuSeconds: number, clientCpuSeconds: number, elapsedSeconds: number, errors: string[]}} result
 * @returns {string}
 */
function report({ clients, seconds }, { acks, cpuSeconds, clientCpuSeconds, elapsedSeconds, errors }) {
  const perSecond = acks / elapsedSeconds;
  const cpuPercent = (100 * cpuSeconds) / elapsedSeconds;
  const microsPerBeat = acks > 0 ? (cpuSeconds * 1e6) / acks : NaN;
  const clientCpuPercent = (100 * clientCpuSeconds) / elapsedSeconds;
  return [
    '## 5. Socket.IO heartbeats',
    '',
    `${clients} socket.io-client users in one process, each sending \`room:heartbeat\` again as soon as the previous is acknowledged, against one \`examples/live-room/server.js\` process for ${seconds} s (after ${WARMUP_MS / 1000} s of warm-up), on a machine with ${os.cpus().length} cores; the users' process used ${clientCpuPercent.toFixed(0)} % of one core.`,
    '',
    '| clients | heartbeats/s | server CPU (% of one core) | µs CPU per heartbeat | errors |',
    '|---|---|---|---|---|',
    `| ${clients} | ${Math.round(perSecond)} | ${cpuPercent.toFixed(0)} | ${microsPerBeat.toFixed(0)} | ${errors.length} |`,
  ].join('\n');
}

/** What the run started, stopped by {@link cleanUp} however it ends. */
const started = { redis: null, server: null, sockets: [] };

/** Closes the users' sockets, stops the server (gracefully) and kills redis-server. */
async function cleanUp() {
  for (const socket of started.sockets.splice(0)) socket.close();
  if (started.server) await stopProcess(started.server.child);
  if (started.redis) await started.redis.stop();
}

async function main() {
  const options = readOptions();
  started.redis = await startRedis({ staleAfter: 90, sweepIntervalMs: 1000 });
  started.server = await startServer(started.redis.url);
  await connectAndJoin(started.server.url, options.clients, started.sockets);
  const result = await measure(started.sockets, started.server.child.pid, options.seconds);
  console.log(report(options, result));
  if (result.errors.length > 0) throw new Error(`${result.errors.length} heartbeats failed, the first: ${result.errors[0]}`);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`heartbeats bench: interrupted by ${signal}`);
    cleanUp().finally(() => process.exit(1));
  });
}

main().then(cleanUp, async (err) => {
  console.error(`heartbeats bench: ${err.message.trim()}`);
  await cleanUp();
  process.exitCode = 1;
});
