'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createClient, createCluster } = require('redis');
const { PRESENCE_MODULE } = require('./redis-server');
const { track, stopProcess, freePort, waitForLine } = require('./processes');
const { waitFor } = require('./wait');
const { SCRIPT_ENGINE, serverArguments, prepareServer, readsPresence } = require('./engine');

const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';

/** Hash slots of a Redis Cluster. */
const SLOTS = 16384;

/**
 * A Redis Cluster of its own: `masters` masters, one replica each, every node a redis-server
 * on free ports (client and bus port) with the presence module (without it, for the script
 * engine: see `engine.js`), in a temporary directory,
 * without persistence. Slots are split evenly between the masters (CLUSTER ADDSLOTSRANGE),
 * the nodes meet (CLUSTER MEET) and each replica follows its master (CLUSTER REPLICATE).
 * `stop()` kills every node, and the test process kills them when it exits whatever happens.
 */
class RedisCluster {
  /**
   * @param {{masters?: number, staleAfter?: number, sweepIntervalMs?: number, nodeTimeoutMs?: number}} [config]
   */
  constructor({ masters = 3, staleAfter = 3, sweepIntervalMs = 100, nodeTimeoutMs = 2000 } = {}) {
    this.config = { masters, staleAfter, sweepIntervalMs, nodeTimeoutMs };
    this.dir = null;
    /** @type {Array<{port: number, busPort: number, process: import('node:child_process').ChildProcess, id: string, output: string}>} */
    this.nodes = [];
    this.clients = [];
    /** @type {Map<number, Promise<import('redis').RedisClientType>>} plain clients by port */
    this.admins = new Map();
  }

  /** `redis://127.0.0.1:<port>` of every node, masters first: the REDIS_CLUSTER form. */
  get urls() {
    return this.nodes.map((node) => `redis://127.0.0.1:${node.port}`);
  }

  /** Starts the nodes and forms the cluster; resolves once every node sees it up with its replicas. */
  async start() {
    if (!SCRIPT_ENGINE && !fs.existsSync(PRESENCE_MODULE)) {
      throw new Error(`presence module not found at ${PRESENCE_MODULE}: build it (cargo build --release) or set PRESENCE_MODULE`);
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-cluster-'));
    const count = this.config.masters * 2;
    for (let i = 0; i < count; i += 1) this.nodes.push(await this.#spawn());
    const admins = await Promise.all(this.nodes.map((node) => this.admin(node.port)));
    for (const [i, admin] of admins.entries()) this.nodes[i].id = String(await admin.sendCommand(['CLUSTER', 'MYID']));
    const { masters } = this.config;
    for (let i = 0; i < masters; i += 1) {
      const from = Math.floor((SLOTS * i) / masters);
      const to = Math.floor((SLOTS * (i + 1)) / masters) - 1;
      await admins[i].sendCommand(['CLUSTER', 'ADDSLOTSRANGE', String(from), String(to)]);
    }
    for (const admin of admins.slice(1)) {
      await admin.sendCommand(['CLUSTER', 'MEET', '127.0.0.1', String(this.nodes[0].port), String(this.nodes[0].busPort)]);
    }
    await waitFor(
      async () => {
        for (const admin of admins) {
          const known = String(await admin.sendCommand(['CLUSTER', 'NODES']))
            .trim()
            .split('\n').length;
          if (known !== count) return false;
        }
        return true;
      },
      { timeoutMs: 20000, intervalMs: 100, message: 'every node to know every other' },
    );
    for (let i = masters; i < count; i += 1) {
      await admins[i].sendCommand(['CLUSTER', 'REPLICATE', this.nodes[i - masters].id]);
    }
    await this.waitHealthy();
  }

  /**
   * Waits until every running node reports `cluster_state:ok`, every master has a replica in
   * sync, and every node agrees on which nodes are masters.
   */
  async waitHealthy(timeoutMs = 30000) {
    await waitFor(
      async () => {
        for (const node of this.running()) {
          const admin = await this.admin(node.port);
          const info = String(await admin.sendCommand(['CLUSTER', 'INFO']));
          if (!info.includes('cluster_state:ok')) return false;
          const role = await admin.sendCommand(['ROLE']);
          if (role[0] === 'slave' && role[3] !== 'connected') return false;
          if (role[0] === 'master' && role[2].length === 0) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, message: 'a healthy cluster' },
    );
  }

  async #spawn() {
    const port = await freePort();
    const busPort = await freePort();
    const dir = path.join(this.dir, String(port));
    fs.mkdirSync(dir);
    const { staleAfter, sweepIntervalMs, nodeTimeoutMs } = this.config;
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-port',
      String(busPort),
      '--cluster-config-file',
      path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout',
      String(nodeTimeoutMs),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...serverArguments(PRESENCE_MODULE, { staleAfter, sweepIntervalMs }),
    ];
    const child = track(spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    const node = { port, busPort, process: child, id: '', output: '' };
    const ready = waitForLine(child, child.stdout, /Ready to accept connections/, 15000, `redis-server (cluster) on port ${port}`);
    child.stdout.on('data', (chunk) => {
      node.output = (node.output + chunk).slice(-8000);
    });
    child.stderr.on('data', (chunk) => {
      node.output = (node.output + chunk).slice(-8000);
    });
    await new Promise((resolve, reject) => {
      child.once('error', reject);
      ready.then(resolve, reject);
    });
    const url = `redis://127.0.0.1:${port}`;
    const admin = createClient({ url });
    await admin.connect();
    try {
      await prepareServer(url, admin, { staleAfter, sweepIntervalMs });
    } finally {
      admin.destroy();
    }
    return node;
  }

  /** The nodes still running. */
  running() {
    return this.nodes.filter((node) => node.process.exitCode === null && node.process.signalCode === null);
  }

  /**
   * A plain connected client to the node on `port` (one per port, closed by `stop()`).
   * @param {number} port
   * @returns {Promise<import('redis').RedisClientType>}
   */
  async admin(port) {
    if (!this.admins.has(port)) {
      const url = `redis://127.0.0.1:${port}`;
      const client = createClient({ url, socket: { reconnectStrategy: false } });
      client.on('error', () => {});
      readsPresence(client, url, { cluster: true });
      this.admins.set(
        port,
        client.connect().then(() => client),
      );
    }
    return this.admins.get(port);
  }

  /**
   * A connected node-redis cluster client of every node (closed by `stop()`).
   * @returns {Promise<import('redis').RedisClusterType>}
   */
  async client() {
    const cluster = createCluster({
      rootNodes: this.urls.map((url) => ({ url })),
      defaults: { socket: { reconnectStrategy: 50, connectTimeout: 1000 } },
    });
    cluster.on('error', () => {});
    cluster.on('node-error', () => {});
    await cluster.connect();
    this.clients.push(cluster);
    return cluster;
  }

  /**
   * The port of the master that owns `slot` now, as the running nodes see it.
   * @param {number} slot
   */
  async masterOf(slot) {
    const admin = await this.admin(this.running()[0].port);
    for (const [from, to, [, port]] of await admin.sendCommand(['CLUSTER', 'SLOTS'])) {
      if (slot >= Number(from) && slot <= Number(to)) return Number(port);
    }
    throw new Error(`no master owns slot ${slot}`);
  }

  /** The ports of the masters now. */
  async masterPorts() {
    const admin = await this.admin(this.running()[0].port);
    return [...new Set((await admin.sendCommand(['CLUSTER', 'SLOTS'])).map(([, , [, port]]) => Number(port)))];
  }

  /**
   * Moves `slot` with its keys from its master to the master on `toPort`: SETSLOT IMPORTING and
   * MIGRATING, MIGRATE of every key, SETSLOT NODE on both and the other masters. `between(step)`
   * runs after the IMPORTING/MIGRATING step and after the keys moved, for a test that acts
   * while the slot is split.
   * @param {number} slot
   * @param {number} toPort
   * @param {{between?: (step: 'migrating' | 'migrated') => Promise<void>}} [options]
   */
  async moveSlot(slot, toPort, { between = async () => {} } = {}) {
    const fromPort = await this.masterOf(slot);
    const source = await this.admin(fromPort);
    const target = await this.admin(toPort);
    const sourceId = this.nodes.find((node) => node.port === fromPort).id;
    const targetId = this.nodes.find((node) => node.port === toPort).id;
    await target.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId]);
    await source.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId]);
    await between('migrating');
    for (;;) {
      const keys = await source.sendCommand(['CLUSTER', 'GETKEYSINSLOT', String(slot), '100']);
      if (keys.length === 0) break;
      await source.sendCommand(['MIGRATE', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...keys]);
    }
    await between('migrated');
    await target.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId]);
    await source.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId]);
    for (const port of await this.masterPorts()) {
      if (port !== fromPort && port !== toPort)
        await (await this.admin(port)).sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId]);
    }
  }

  /**
   * Kills (SIGKILL) the node on `port`.
   * @param {number} port
   */
  async kill(port) {
    const node = this.nodes.find((candidate) => candidate.port === port);
    const admin = this.admins.get(port);
    this.admins.delete(port);
    if (admin) (await admin).destroy();
    await stopProcess(node.process, 'SIGKILL');
  }

  /** Closes every client made here, kills every node and removes the directories. */
  async stop() {
    for (const client of this.clients.splice(0)) client.destroy();
    for (const admin of this.admins.values() ?? []) (await admin).destroy();
    this.admins.clear();
    for (const node of this.nodes) await stopProcess(node.process, 'SIGKILL');
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/**
 * Starts a {@link RedisCluster}; kills whatever it started if it cannot form the cluster.
 * @param {ConstructorParameters<typeof RedisCluster>[0]} [config]
 * @returns {Promise<RedisCluster>}
 */
async function startRedisCluster(config) {
  const cluster = new RedisCluster(config);
  try {
    await cluster.start();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

module.exports = { startRedisCluster };
