'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createClient } = require('redis');
const { track, stopProcess, freePort, waitForLine } = require('./processes');
const { ENGINE, serverArguments, prepareServer, readsPresence } = require('./engine');

/** The redis-server binary: env REDIS_SERVER, else `redis-server` on the PATH. */
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';

/** The presence module: env PRESENCE_MODULE, else the repository's release build. */
const PRESENCE_MODULE = process.env.PRESENCE_MODULE
  ? path.resolve(process.env.PRESENCE_MODULE)
  : path.resolve(__dirname, '..', '..', '..', '..', 'target', 'release', 'libredis_presence.so');

/**
 * A redis-server of its own, on a free port and a temporary directory, with the presence
 * module loaded (without it, for the script engine: see `engine.js`) and no persistence. `stop()` kills it; `restart()` starts it again on the same
 * port (and so empty).
 */
class RedisServer {
  /**
   * @param {{staleAfter?: number, sweepIntervalMs?: number, ttl?: number, engine?: string}} config
   *   the liveness settings (module configs, or the script engine's options), and the engine
   *   when not PRESENCE_TEST_ENGINE's (see `engine.js`)
   */
  constructor({ staleAfter = 3, sweepIntervalMs = 100, ttl, engine } = {}) {
    this.config = { staleAfter, sweepIntervalMs, ttl, engine };
    this.port = 0;
    this.dir = null;
    this.process = null;
    this.output = '';
    this.clients = [];
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server; resolves once it accepts connections. */
  async start() {
    if ((this.config.engine ?? ENGINE) === 'module' && !fs.existsSync(PRESENCE_MODULE)) {
      throw new Error(`presence module not found at ${PRESENCE_MODULE}: build it (cargo build --release) or set PRESENCE_MODULE`);
    }
    this.dir = this.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'presence-redis-'));
    for (let attempt = 0; ; attempt += 1) {
      const fixedPort = this.port !== 0;
      if (!fixedPort) this.port = await freePort();
      try {
        await this.#spawn();
        return;
      } catch (err) {
        if (fixedPort || attempt >= 2 || !/Address already in use/.test(err.message)) throw err;
        this.port = 0;
      }
    }
  }

  async #spawn() {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.dir,
      ...serverArguments(PRESENCE_MODULE, this.config),
    ];
    const child = track(spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.process = child;
    const ready = waitForLine(child, child.stdout, /Ready to accept connections/, 15000, `redis-server on port ${this.port}`);
    child.stdout.on('data', (chunk) => {
      this.output = (this.output + chunk).slice(-8000);
    });
    child.stderr.on('data', (chunk) => {
      this.output = (this.output + chunk).slice(-8000);
    });
    await new Promise((resolve, reject) => {
      child.once('error', reject);
      ready.then(resolve, reject);
    });
    const admin = createClient({ url: this.url });
    await admin.connect();
    try {
      await prepareServer(this.url, admin, this.config);
    } finally {
      admin.destroy();
    }
  }

  /**
   * A connected node-redis client to this server, closed by `stop()`.
   * @returns {Promise<import('redis').RedisClientType>}
   */
  async client() {
    const client = createClient({ url: this.url, socket: { reconnectStrategy: 50 } });
    client.on('error', () => {});
    await client.connect();
    readsPresence(client, this.url);
    this.clients.push(client);
    return client;
  }

  /** Kills the server (it keeps nothing) and starts it again on the same port. */
  async restart() {
    await stopProcess(this.process, 'SIGKILL');
    await this.#spawn();
  }

  /** Closes the clients made by `client()`, kills the server and removes its directory. */
  async stop() {
    for (const client of this.clients.splice(0)) client.destroy();
    if (this.process) await stopProcess(this.process, 'SIGKILL');
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/**
 * Starts a {@link RedisServer}.
 * @param {{staleAfter?: number, sweepIntervalMs?: number, ttl?: number, engine?: string}} [config]
 * @returns {Promise<RedisServer>}
 */
async function startRedis(config) {
  const server = new RedisServer(config);
  await server.start();
  return server;
}

module.exports = { startRedis, PRESENCE_MODULE };
