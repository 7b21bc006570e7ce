'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startRedis, waitFor, track, freePort, stopProcess, SCRIPT_ENGINE } = require('./support/shared');
const { startDemo } = require('./support/demo-server');
const { TcpProxy } = require('./support/tcp-proxy');

const SERVER_JS = path.join(__dirname, '..', 'server.js');
const REPO = path.join(__dirname, '..', '..', '..');
const STACK_LINE = /\n\s+at /;

/** Runs a command to its end; resolves with its exit code, signal, output and duration. */
function run(command, args, { env, timeoutMs = 60000, detached = false, onOutput = () => {} }) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = track(spawn(command, args, { env: { ...process.env, ...env }, cwd: REPO, detached, stdio: ['ignore', 'pipe', 'pipe'] }));
    const result = { stdout: '', stderr: '', child };
    child.stdout.on('data', (chunk) => {
      result.stdout += chunk;
      onOutput(result);
    });
    child.stderr.on('data', (chunk) => {
      result.stderr += chunk;
      onOutput(result);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ ...result, code, signal, ms: Date.now() - started });
    });
  });
}

/** Listens on a free port of every interface; resolves with the server and its port. */
async function occupyPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, resolve));
  return { server, port: server.address().port };
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('shutdown within its bound', () => {
  it('SIGTERM with a client whose network was cut silently: every presence at once, the exit within SHUTDOWN_TIMEOUT_MS', async (t) => {
    const shutdownTimeoutMs = 2000;
    const redis = await startRedis({ staleAfter: 60 });
    const demo = await startDemo({ redisUrl: redis.url, env: { SHUTDOWN_TIMEOUT_MS: shutdownTimeoutMs } });
    const proxy = new TcpProxy(demo.port);
    const clients = [];
    try {
      const admin = await redis.client();
      const proxyPort = await proxy.start();
      const carol = await demo.connect('carol');
      const dave = await demo.connect('dave', { url: `http://127.0.0.1:${proxyPort}` });
      clients.push(carol, dave);
      await carol.join('stage');
      await dave.join('stage');
      proxy.cut();

      const start = Date.now();
      const stopped = demo.stop('SIGTERM');
      await waitFor(async () => (await admin.sendCommand(['PRESENCE.COUNT', 'stage'])) === 0, { timeoutMs: 30000, message: 'no presence left' });
      const leftMs = Date.now() - start;
      const code = await stopped;
      const exitMs = Date.now() - start;
      t.diagnostic(`presences left after ${leftMs} ms, exited after ${exitMs} ms (SHUTDOWN_TIMEOUT_MS ${shutdownTimeoutMs})`);

      // The server judges both by its own clock: status 0 only when every presence was left
      // before the deadline (else status 1 and a line saying so), and the connection that never
      // closed is closed when the deadline passes, not when Socket.IO's ping times out.
      assert.equal(code, 0, demo.output);
      assert.doesNotMatch(demo.output, /were not all left/);
      assert.match(demo.output, /closing 1 connection\(s\) that did not close within 2000 ms/);
      assert.deepEqual(await admin.sendCommand(['KEYS', 'room:presence:*']), []);
      assert.doesNotMatch(demo.output, STACK_LINE);
    } finally {
      for (const client of clients) client.close();
      await proxy.close();
      await demo.stop('SIGKILL');
      await redis.stop();
    }
  });
});

describe('Redis down for a while', () => {
  it('each error is logged once, requests get an answer, and everything works again when it is back', async () => {
    const redis = await startRedis({ staleAfter: 30 });
    const demo = await startDemo({ redisUrl: redis.url });
    const bob = await demo.connect('bob');
    try {
      await bob.join('r');
      await stopProcess(redis.process, 'SIGKILL');
      const deadline = Date.now() + 3000;
      while (Date.now() < deadline) {
        assert.equal((await fetch(`${demo.url}/api/room?id=r`)).status, 503);
        assert.equal((await fetch(`${demo.url}/`)).status, 200);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await redis.restart();
      // node-down when the server found its node's lease gone (Redis was down for most of it) first.
      assert.match((await bob.waitForForceLeave('r', 15000)).reason, /^(reset|not-present|node-down)$/, 'told of the presence Redis lost');
      await waitFor(() => /GET \/api\/room: working again/.test(demo.output) || fetch(`${demo.url}/api/room?id=r`).then(() => false), {
        message: 'the room readable again',
      });
      assert.equal(demo.process.exitCode, null);
      const lines = demo.output.split('\n').filter((line) => /ECONNREFUSED|not connected/.test(line));
      assert.deepEqual(lines, [...new Set(lines)], 'no error line twice in one outage');
      assert.doesNotMatch(demo.output, STACK_LINE);
    } finally {
      bob.close();
      await demo.stop('SIGKILL');
      await redis.stop();
    }
  });
});

describe('a port already in use', () => {
  it('server.js says so in one line and exits with status 78, once', async () => {
    const redis = await startRedis();
    const { server, port } = await occupyPort();
    try {
      const result = await run(process.execPath, [SERVER_JS], { env: { PORT: String(port), REDIS_URL: redis.url }, timeoutMs: 20000 });
      assert.equal(result.code, 78, result.stderr);
      assert.equal(result.stdout, '');
      assert.deepEqual(result.stderr.trim().split('\n'), [
        `live-room: cannot start: port ${port} is already in use: stop what uses it, or set PORT to another port (PORT=0 picks a free one)`,
      ]);
    } finally {
      server.close();
      await redis.stop();
    }
  });

  it('scripts/demo says so in one line and exits non-zero before building anything', async () => {
    const { server, port } = await occupyPort();
    try {
      const result = await run(path.join(REPO, 'scripts', 'demo'), [], { env: { PORT: String(port), PRESENCE_MODULE: '/nonexistent' }, timeoutMs: 20000 });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, '');
      assert.deepEqual(result.stderr.trim().split('\n'), [
        `scripts/demo: port ${port} (PORT) is already in use: choose another PORT, or leave PORT unset to pick a free port`,
      ]);
    } finally {
      server.close();
    }
  });
});

describe('scripts/demo', () => {
  it('prints the URL it serves, restarts a killed server without bash noise, and stops cleanly on Ctrl-C', async () => {
    const { PRESENCE_MODULE } = require(path.join(REPO, 'integrations', 'socketio', 'test', 'support', 'redis-server'));
    const redisPort = await freePort();
    const steps = { url: null, firstPid: null, restarted: false, interrupted: false };
    const onOutput = (result) => {
      const url = /Live-room demo: (http:\/\/localhost:\d+\/)/.exec(result.stdout);
      if (url && !steps.url) {
        steps.url = url[1];
        steps.firstPid = Number(/Demo server started \(pid (\d+)\)/.exec(result.stdout)[1]);
        steps.check = checkAndKill(steps);
      }
      const restarts = result.stdout.match(/Demo server started \(pid \d+\)/g) ?? [];
      if (restarts.length === 2 && /listening on/.test(result.stdout.split('starting it again')[1] ?? '') && !steps.interrupted) {
        steps.interrupted = true;
        setTimeout(() => process.kill(-result.child.pid, 'SIGINT'), 200);
      }
    };
    const checkAndKill = async ({ url, firstPid }) => {
      const res = await fetch(url);
      const page = await res.text();
      process.kill(firstPid, 'SIGKILL');
      return { status: res.status, page };
    };
    // On the script engine's lanes, the demo the way a Redis without modules runs it.
    // A port of its own: the suites of several servers run side by side, each with this test.
    const demoPort = await freePort();
    const env = { PRESENCE_MODULE, REDIS_PORT: String(redisPort), PORT: String(demoPort), PRESENCE_ENGINE: SCRIPT_ENGINE ? 'script' : '' };
    const result = await run(path.join(REPO, 'scripts', 'demo'), [], { env, detached: true, timeoutMs: 90000, onOutput });
    const output = result.stdout + result.stderr;

    assert.equal(steps.url, `http://localhost:${demoPort}/`, output);
    const served = await steps.check;
    assert.equal(served.status, 200);
    assert.match(served.page, /<title>Live room<\/title>/);
    assert.match(output, new RegExp(`live-room listening on ${steps.url.slice(0, -1)}\\n`));
    assert.match(output, /The demo server was killed \(SIGKILL\); starting it again/);
    if (SCRIPT_ENGINE) {
      assert.match(output, /^Redis without the module \(script engine\): 127\.0\.0\.1:\d+/m);
      assert.match(output, /presence node \S+ \(node lease 10000 ms\), script engine$/m);
    } else {
      assert.match(output, /^Redis with the presence module: 127\.0\.0\.1:\d+/m);
      assert.match(output, /presence node \S+ \(node lease 10000 ms\), module engine$/m);
    }
    assert.match(output, /^A crashed demo server's users leave within 11 s \(node lease 10 s \+ one sweep\)\.$/m);
    assert.doesNotMatch(output, /Killed|line \d+:/, 'no job-control noise from bash');
    assert.equal(result.code, 130, output);
    const lines = output.trim().split('\n');
    assert.equal(lines.at(-1), 'Stopped.');
    assert.ok(!lines.slice(lines.indexOf('Stopping the demo…')).some((line) => /starting it again/.test(line)), output);
    assert.match(output, /live-room: SIGTERM: leaving every presence and stopping/);
    const pids = [...output.matchAll(/Demo server started \(pid (\d+)\)/g)].map((match) => Number(match[1]));
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.equal(isAlive(pid), false, `demo server ${pid} still running`);
    assert.doesNotMatch(output, STACK_LINE);
  });
});
