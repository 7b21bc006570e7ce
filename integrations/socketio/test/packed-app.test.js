'use strict';

/*
 * The package as an application gets it: `npm pack` into a temporary folder, then an app of
 * its own outside the repository (in os.tmpdir()) that depends on the tarball and on redis,
 * socket.io and socket.io-client from the registry, `npm install`ed. From the app's own
 * process (a script in its folder that requires `@presence/socketio` by name), against a
 * redis-server with the module: the browser file served and evaluated as a page would, one
 * join, one heartbeat, and the force-leave of the module's stale sweep reaching the client. And
 * a TypeScript file of the app, under `strict`, compiled against the packed declarations.
 *
 * It fails when the tarball misses a file or holds one it should not (tests, node_modules), when
 * `main`, `types` or a target of `exports` names a file not in it, when a packed file requires
 * one that is not packed, and when the packed declarations do not compile in the app.
 */
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startRedis } = require('./support/redis-server');
const { SCRIPT_ENGINE, engineOptions } = require('./support/engine');
const { track } = require('./support/processes');

const PACKAGE_DIR = path.join(__dirname, '..');
const REPO = path.join(PACKAGE_DIR, '..', '..');
const PACKAGE = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'));
/** The package's own TypeScript compiler (a devDependency), so that the app installs none. */
const TSC = path.join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
const STALE_AFTER_S = 1;

/**
 * Runs a command to its end; resolves with its output, rejects with it on a non-zero exit. The
 * `npm_*` variables of an enclosing `npm run` are left out, so that npm in the app's folder
 * takes nothing of this package's configuration.
 */
function run(command, args, { cwd, env = {}, timeoutMs = 300000 }) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'));
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${signal ?? code}:\n${stdout}\n${stderr}`.slice(-6000)));
    });
  });
}

/** The version of a package installed in this package's node_modules (what its own tests use). */
function installedVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/** Every file path a `main`, `types` or `exports` field names, without `./`. */
function namedFiles(manifest) {
  const targets = [manifest.main, manifest.types];
  const walk = (value) => {
    if (typeof value === 'string') targets.push(value);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(manifest.exports);
  return targets.filter(Boolean).map((target) => path.posix.normalize(target));
}

/** The files under `dir`, relative to it, sorted. */
function listFiles(dir) {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) =>
      path
        .relative(dir, path.join(entry.parentPath ?? entry.path, entry.name))
        .split(path.sep)
        .join('/'),
    )
    .sort();
}

/** The app's server and client in one process: what it does is printed as one JSON line. */
const APP_JS = `'use strict';
const fs = require('node:fs');
const http = require('node:http');
const vm = require('node:vm');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const { createClient } = require('redis');
const { attachPresence } = require('@presence/socketio');
const { createPresenceClient } = require('@presence/socketio/client');

const CLIENT_FILE = require.resolve('@presence/socketio/client');

async function main() {
  const report = {
    resolved: [require.resolve('@presence/socketio'), require.resolve('@presence/socketio/server'), CLIENT_FILE],
  };
  const redis = createClient({ url: process.env.REDIS_URL });
  redis.on('error', (err) => console.error('redis:', err.message));
  await redis.connect();

  // The page gets the client as a file the app serves.
  const httpServer = http.createServer((req, res) => {
    if (req.url === '/presence-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      fs.createReadStream(CLIENT_FILE).pipe(res);
    } else {
      res.writeHead(404).end();
    }
  });
  const ioServer = new Server(httpServer);
  ioServer.use((socket, next) => {
    socket.data.userId = socket.handshake.auth.token; // an app verifies a signed token here
    next();
  });
  // The engine's settings, as the test's server needs them (none with the module).
  const engine = JSON.parse(process.env.PRESENCE_ENGINE_OPTIONS || '{}');
  const presence = await attachPresence(ioServer, { redis, getUserId: (socket) => socket.data.userId, ...engine });
  report.engine = presence.engine;
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const url = 'http://127.0.0.1:' + httpServer.address().port;

  const script = await (await fetch(url + '/presence-client.js')).text();
  const page = {};
  vm.runInNewContext(script, { self: page });
  report.browserGlobal = typeof (page.PresenceClient && page.PresenceClient.createPresenceClient);

  const socket = io(url, { auth: { token: 'alice' }, transports: ['websocket'] });
  let forceLeft;
  const forceLeave = new Promise((resolve) => (forceLeft = resolve));
  const client = createPresenceClient(socket, { onForceLeave: forceLeft }); // heartbeats every 25-30 s
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  report.join = await client.join('lobby');
  report.heartbeat = await socket.timeout(10000).emitWithAck('room:heartbeat', { roomId: 'lobby' });
  // No heartbeat for stale-after: the sweep (the module's, or the app's for the script engine) removes the presence.
  const deadline = new Promise((resolve) => setTimeout(() => resolve('no room:force-leave within 60 s'), 60000).unref());
  report.forceLeave = await Promise.race([forceLeave, deadline]);
  report.rooms = client.rooms();
  report.count = (await presence.readRoom('lobby')).count;

  client.close();
  socket.close();
  await presence.close();
  await ioServer.close();
  await redis.close();
  console.log(JSON.stringify(report));
}

main().catch((err) => {
  console.error(err.stack);
  process.exit(1);
});
`;

/** The app's TypeScript: the server and client entry points, their options and types. */
const CONSUMER_TS = `import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import { createClient } from 'redis';
import { attachPresence, presenceChannel, type AttachPresenceOptions, type PresenceHandle } from '@presence/socketio/server';
import {
  createPresenceClient,
  type ForceLeavePayload,
  type JoinAck,
  type ParticipantsPayload,
  type PresenceClient,
  type PresenceClientOptions,
  type TimeoutFailure,
} from '@presence/socketio/client';
import {
  ErrorCode,
  PresenceError,
  isValidId,
  type ForceLeaveReason,
  type PresenceClientToServerEvents,
  type PresenceServerToClientEvents,
} from '@presence/socketio';

interface SocketData {
  userId?: string;
}

export async function startServer(): Promise<PresenceHandle> {
  const redis = createClient({ url: process.env.REDIS_URL });
  await redis.connect();
  const httpServer = createServer();
  const ioServer = new Server<PresenceClientToServerEvents, PresenceServerToClientEvents, Record<string, never>, SocketData>(httpServer);
  const options: AttachPresenceOptions<{ data: SocketData }> = {
    redis,
    getUserId: (socket) => socket.data.userId,
    participantsIntervalMs: 250,
    maxUsers: 200,
    commandTimeoutMs: 2000,
    nodeLeaseMs: 10000,
    logger: console,
  };
  void options;
  const presence = await attachPresence(ioServer, {
    redis,
    getUserId: (socket) => socket.data.userId, // socket.data is SocketData
    nodeLeaseMs: 10000,
  });
  // @ts-expect-error a user id is a string
  void attachPresence(ioServer, { redis, getUserId: () => 42 });
  const channel: \`presence:\${string}\` = presenceChannel('lobby');
  ioServer.local.to(channel).emit('room:participants', { roomId: 'lobby', users: [], members: [], count: 0, truncated: false });
  httpServer.listen(3000);
  return presence;
}

export async function joinLobby(url: string): Promise<string> {
  const socket: Socket<PresenceServerToClientEvents, PresenceClientToServerEvents> = io(url, { auth: { token: 'alice' } });
  const options: PresenceClientOptions = {
    heartbeatIntervalMs: 25000,
    heartbeatJitterMs: 5000,
    ackTimeoutMs: 10000,
    onForceLeave: ({ roomId, reason }: ForceLeavePayload) => console.log(roomId, describe(reason)),
    onParticipants: ({ users, count, truncated }: ParticipantsPayload) => console.log(users.join(), count, truncated),
  };
  const client: PresenceClient = createPresenceClient(socket, options);
  const ack: JoinAck | TimeoutFailure = await client.join('lobby');
  if (!ack.ok) {
    // @ts-expect-error a failed acknowledgement has no users
    void ack.users;
    return ack.error === ErrorCode.TIMEOUT ? 'timeout' : ack.error;
  }
  return \`\${ack.users.length} of \${ack.count}\`;
}

function describe(reason: ForceLeaveReason): string {
  switch (reason) {
    case 'stale':
    case 'expired':
    case 'replaced':
    case 'evicted':
    case 'no-ttl':
    case 'node-down':
    case 'deleted':
    case 'not-present':
    case 'reset':
      return reason;
    default: {
      const never: never = reason;
      return never;
    }
  }
}

export function codeOf(err: unknown): string {
  return err instanceof PresenceError ? err.code : isValidId(err) ? err : 'unknown';
}
`;

describe('the packed package in an app of its own', () => {
  let tmp;
  let appDir;
  let tarball;
  let packed;
  let packMs;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-packed-'));
    appDir = path.join(tmp, 'app');
    fs.mkdirSync(appDir);
    const started = Date.now();
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: PACKAGE_DIR });
    const [report] = JSON.parse(stdout);
    tarball = path.join(tmp, report.filename);
    packed = report.files.map((file) => file.path).sort();
    packMs = Date.now() - started;
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('npm pack holds the manifest, the README, src/ (sources and declarations) and the script library, nothing else', (t) => {
    t.diagnostic(`npm pack: ${packMs} ms, ${packed.length} files`);
    const sources = listFiles(path.join(PACKAGE_DIR, 'src')).map((file) => `src/${file}`);
    const expected = ['README.md', 'lua/README.md', 'lua/presence.lua', 'package.json', ...sources].sort();
    assert.deepEqual(packed, expected);
    assert.ok(fs.statSync(tarball).isFile());
    for (const file of packed) assert.doesNotMatch(file, /(^|\/)(test|node_modules|examples|bench)\//, file);
    for (const file of namedFiles(PACKAGE)) assert.ok(packed.includes(file), `package.json names ${file}, which is not packed`);
    // Each relative require() of a packed source and import of a packed declaration is packed too.
    for (const file of packed.filter((name) => /\.(js|d\.ts)$/.test(name))) {
      const text = fs.readFileSync(path.join(PACKAGE_DIR, file), 'utf8');
      for (const [, target] of text.matchAll(/(?:require\(|from |import\()'(\.\.?\/[^']+)'/g)) {
        const base = path.posix.join(path.posix.dirname(file), target);
        const candidates = file.endsWith('.d.ts') ? [`${base}.d.ts`, base] : [`${base}.js`, base];
        assert.ok(
          candidates.some((candidate) => packed.includes(candidate)),
          `${file} needs ${target}, which is not packed`,
        );
      }
    }
  });

  it('installs from the tarball, with redis, socket.io and socket.io-client from the registry', async (t) => {
    assert.ok(path.relative(REPO, appDir).startsWith('..'), `the app (${appDir}) is outside the repository`);
    const manifest = {
      name: 'presence-packed-app',
      version: '1.0.0',
      private: true,
      dependencies: {
        '@presence/socketio': `file:${tarball}`,
        // The versions this package's own tests use, already in npm's cache after its npm ci.
        redis: installedVersion('redis'),
        'socket.io': installedVersion('socket.io'),
        'socket.io-client': installedVersion('socket.io-client'),
      },
      devDependencies: { '@types/node': installedVersion('@types/node') },
    };
    fs.writeFileSync(path.join(appDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const started = Date.now();
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: appDir,
      env: { npm_config_update_notifier: 'false' },
    });
    t.diagnostic(`npm install in the app: ${Date.now() - started} ms`);
    const installed = path.join(appDir, 'node_modules', '@presence', 'socketio');
    assert.equal(fs.lstatSync(installed).isSymbolicLink(), false, 'a copy from the tarball, not a link to the repository');
    assert.deepEqual(listFiles(installed), packed);
  });

  it("runs from the app's own process: the browser file, one join, one heartbeat, a force-leave of the stale sweep", async (t) => {
    const redis = await startRedis({ staleAfter: STALE_AFTER_S, sweepIntervalMs: 100 });
    try {
      fs.writeFileSync(path.join(appDir, 'app.js'), APP_JS);
      const started = Date.now();
      const env = { REDIS_URL: redis.url, PRESENCE_ENGINE_OPTIONS: JSON.stringify(engineOptions(redis.url)) };
      const { stdout } = await run(process.execPath, ['app.js'], { cwd: appDir, env, timeoutMs: 120000 });
      t.diagnostic(`the app's run: ${Date.now() - started} ms`);
      const report = JSON.parse(stdout.trim().split('\n').at(-1));
      const installed = path.join(appDir, 'node_modules', '@presence', 'socketio');
      assert.deepEqual(report.resolved, [
        path.join(installed, 'src', 'index.js'),
        path.join(installed, 'src', 'server.js'),
        path.join(installed, 'src', 'client.js'),
      ]);
      assert.equal(report.engine, SCRIPT_ENGINE ? 'script' : 'module');
      assert.equal(report.browserGlobal, 'function', 'the served client file defines PresenceClient.createPresenceClient');
      assert.deepEqual(report.join, {
        ok: true,
        roomId: 'lobby',
        users: ['alice'],
        members: [{ userId: 'alice', data: null }],
        count: 1,
        truncated: false,
      });
      assert.deepEqual(report.heartbeat, { ok: true });
      assert.deepEqual(report.forceLeave, { roomId: 'lobby', reason: 'stale' });
      assert.deepEqual(report.rooms, []);
      assert.equal(report.count, 0);
    } finally {
      await redis.stop();
    }
  });

  it('compiles a TypeScript file of the app under strict against the packed declarations', async (t) => {
    fs.writeFileSync(path.join(appDir, 'consumer.ts'), CONSUMER_TS);
    const tsconfig = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        lib: ['es2022'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        types: ['node'],
        skipLibCheck: false,
      },
      files: ['consumer.ts'],
    };
    fs.writeFileSync(path.join(appDir, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
    const started = Date.now();
    const { stdout } = await run(process.execPath, [TSC, '-p', appDir, '--listFiles'], { cwd: appDir });
    const declarations = stdout.split('\n').filter((line) => line.includes('@presence/socketio'));
    assert.ok(
      declarations.length > 0 && declarations.every((line) => line.startsWith(path.join(appDir, 'node_modules', '@presence', 'socketio'))),
      `the declarations come from the app's node_modules:\n${declarations.join('\n')}`,
    );
    t.diagnostic(`tsc in the app: ${Date.now() - started} ms`);
  });
});
