'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const { TestClient, track, stopProcess, freePort, waitForLine, engineOptions } = require('./shared');

const SERVER_JS = path.join(__dirname, '..', '..', 'server.js');

/** The session secret of the demo servers under test, so tokens survive their restarts. */
const TEST_SECRET = 'test-secret-of-the-live-room-demo';

/**
 * The demo's environment that selects the engine of the tests' Redis (PRESENCE_TEST_ENGINE):
 * nothing with the module, PRESENCE_ENGINE=script and the server's liveness settings without it.
 * @param {string | string[]} redis the URL of a test server, or a test cluster's node URLs
 * @returns {Record<string, string>}
 */
function engineEnvironment(redis) {
  const { engine, staleAfter, ttl, sweepIntervalMs } = engineOptions(redis);
  if (engine === undefined) return {};
  const env = { PRESENCE_ENGINE: engine, PRESENCE_STALE_AFTER: String(staleAfter), PRESENCE_SWEEP_INTERVAL_MS: String(sweepIntervalMs) };
  return ttl === undefined ? env : { ...env, PRESENCE_TTL: String(ttl) };
}

/**
 * `node server.js` as a child process on a fixed port (kept across restarts so that clients
 * reconnect to it), configured through the environment like in production.
 */
class DemoServer {
  /**
   * @param {object} options
   * @param {string} [options.redisUrl] a Redis server's URL (REDIS_URL)
   * @param {string[]} [options.redisCluster] the URLs of a cluster's nodes (REDIS_CLUSTER), instead
   * @param {Record<string, string | number>} [options.env] more environment (PING_INTERVAL_MS, …)
   */
  constructor({ redisUrl, redisCluster, env = {} }) {
    this.redisUrl = redisUrl;
    this.redisCluster = redisCluster;
    this.env = env;
    this.port = 0;
    this.process = null;
    this.output = '';
    /** The node named when the server last started (its log may since have dropped that line). */
    this.startNodeId = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * The node the server writes its presences through now, as its log says: the one it started
   * with, or the last one it went on with after a lost node lease.
   */
  get nodeId() {
    const named = [...this.output.matchAll(/presence node (\S+) \(node lease|continuing as node (\S+)$/gm)];
    const last = named.at(-1);
    return last ? (last[1] ?? last[2]) : this.startNodeId;
  }

  /**
   * The socket of a client's presence keys on this server: its node now and the socket id.
   * @param {{socket: {id: string}}} client
   */
  held(client) {
    return `${this.nodeId}/${client.socket.id}`;
  }

  /** Starts the server (again); resolves once it logged its URL. */
  async start() {
    if (this.port === 0) this.port = await freePort();
    const env = {
      ...process.env,
      PORT: String(this.port),
      ...(this.redisCluster ? { REDIS_CLUSTER: this.redisCluster.join(',') } : { REDIS_URL: this.redisUrl }),
      SESSION_SECRET: TEST_SECRET,
      ...engineEnvironment(this.redisCluster ?? this.redisUrl),
      ...Object.fromEntries(Object.entries(this.env).map(([key, value]) => [key, String(value)])),
    };
    const child = track(spawn(process.execPath, [SERVER_JS], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    this.process = child;
    const listening = waitForLine(child, child.stdout, /listening on (http:\/\/\S+)/, 15000, `demo server on port ${this.port}`);
    child.stdout.on('data', (chunk) => {
      this.output = (this.output + chunk).slice(-8000);
    });
    child.stderr.on('data', (chunk) => {
      this.output = (this.output + chunk).slice(-8000);
    });
    try {
      await listening;
    } catch (err) {
      // The reason a server that cannot start gives is on its standard error.
      throw new Error(`${err instanceof Error ? err.message : err}\n${this.output}`);
    }
    this.startNodeId = /presence node (\S+) \(node lease/.exec(this.output)[1];
  }

  /** Stops the server with `signal` and waits for its exit; returns its exit code. */
  async stop(signal = 'SIGTERM') {
    await stopProcess(this.process, signal);
    return this.process.exitCode;
  }

  /**
   * A development token from the server's own login endpoint.
   * @param {string} user
   */
  async token(user) {
    const res = await fetch(`${this.url}/api/token?user=${encodeURIComponent(user)}`);
    if (!res.ok) throw new Error(`login of ${user} refused: ${res.status}`);
    return (await res.json()).token;
  }

  /**
   * A development login by display name, as the page does: `{token, userId}`.
   * @param {string} name
   */
  async login(name) {
    const res = await fetch(`${this.url}/api/token?name=${encodeURIComponent(name)}`);
    if (!res.ok) throw new Error(`login of ${name} refused: ${res.status}`);
    return res.json();
  }

  /**
   * A connected, logged-in {@link TestClient}: by user id, or with `name`, by display name as
   * the page logs in (then `client.userId` is the id the server made).
   * @param {string | {name: string}} user
   * @param {object} [options] TestClient options; `url` replaces the server's (a proxy, say)
   */
  async connect(user, { url = this.url, ...options } = {}) {
    const login = typeof user === 'string' ? { token: await this.token(user), userId: user } : await this.login(user.name);
    const client = new TestClient(url, { auth: { token: login.token }, ...options });
    client.userId = login.userId;
    await client.connected();
    return client;
  }
}

/**
 * Starts a {@link DemoServer}.
 * @param {{redisUrl?: string, redisCluster?: string[], env?: object}} options
 */
async function startDemo(options) {
  const server = new DemoServer(options);
  await server.start();
  return server;
}

module.exports = { startDemo };
