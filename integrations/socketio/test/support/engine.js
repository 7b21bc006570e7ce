'use strict';

const { ScriptCalls } = require('../../src/engines/script');
const { keySlot, tagsBySlot } = require('../../src/slots');

/**
 * The engine the suites run on, from env PRESENCE_TEST_ENGINE (SPEC §13):
 * - `module` (the default): servers with the presence module loaded;
 * - `script`: servers without it that refuse `MODULE` (`rename-command MODULE ""`), the
 *   integration on its script engine (`FUNCTION LOAD`, `FCALL`);
 * - `script-evalsha`: the same on servers whose default user is refused `FUNCTION` (ACL), so
 *   that the library runs through `SCRIPT LOAD` and `EVALSHA`.
 */
const ENGINE = process.env.PRESENCE_TEST_ENGINE || 'module';
if (!['module', 'script', 'script-evalsha'].includes(ENGINE)) {
  throw new Error(`PRESENCE_TEST_ENGINE must be module, script or script-evalsha (got ${JSON.stringify(ENGINE)})`);
}

/** Whether the suites run on the script engine. */
const SCRIPT_ENGINE = ENGINE !== 'module';

/**
 * The settings of the liveness rule a test server was started with, in the form both engines
 * take them.
 * @typedef {{staleAfter: number, sweepIntervalMs: number, ttl?: number, engine?: string}} EngineConfig
 *   `engine` overrides PRESENCE_TEST_ENGINE for one server
 */

/** @type {Map<string, EngineConfig>} the settings of each test server, by URL */
const configs = new Map();

/**
 * The arguments of a test server for the engine: the module and its configs, or, for the
 * script engine, no module and `MODULE` refused.
 * @param {string} modulePath
 * @param {EngineConfig} config
 * @returns {string[]}
 */
function serverArguments(modulePath, { staleAfter, sweepIntervalMs, ttl, engine = ENGINE }) {
  if (engine !== 'module') return ['--rename-command', 'MODULE', ''];
  const args = ['--loadmodule', modulePath, 'presence.stale-after', String(staleAfter), 'presence.sweep-interval', String(sweepIntervalMs)];
  if (ttl !== undefined) args.push('presence.ttl', String(ttl));
  return args;
}

/**
 * Readies a test server just started at `url` for the engine (the ACL of `script-evalsha`) and
 * notes its settings for {@link engineOptions}.
 * @param {string} url
 * @param {import('redis').RedisClientType} admin a client of it
 * @param {EngineConfig} config
 */
async function prepareServer(url, admin, config) {
  configs.set(url, config);
  if (engineOf(url) === 'script-evalsha') await admin.sendCommand(['ACL', 'SETUSER', 'default', '-function']);
}

/**
 * The options of `attachPresence` (or the demo's environment) that select the engine for a
 * server started by the test support at `url`: nothing with the module (its configs are the
 * server's), the engine and the server's settings for the script engine.
 * @param {string | string[]} url a server's URL, or a cluster's node URLs
 * @returns {{engine?: 'script', staleAfter?: number, ttl?: number, sweepIntervalMs?: number}}
 */
function engineOptions(url) {
  const first = Array.isArray(url) ? url[0] : url;
  const config = configs.get(first);
  if (engineOf(first) === 'module') return {};
  if (!config) throw new Error(`no test server was started at ${url}`);
  const options = { engine: /** @type {const} */ ('script'), staleAfter: config.staleAfter, sweepIntervalMs: config.sweepIntervalMs };
  return config.ttl === undefined ? options : { ...options, ttl: config.ttl };
}

/**
 * The tag of the shard keys on the master that owns `roomId`'s slot, as the integration names
 * it: the tag in use there (`presence:nodes:{<tag>}`, the smallest of those that hash to a slot
 * of that master), else the tag of the master's first slot (`ClusterLeaseShards`).
 * @param {(args: string[]) => Promise<unknown>} send a client of that master
 * @param {string} roomId
 */
async function clusterTagOf(send, roomId) {
  const ranges = /** @type {Array<[number, number, [string, number]]>} */ (await send(['CLUSTER', 'SLOTS']));
  const owner = (/** @type {number} */ slot) => ranges.find(([from, to]) => slot >= Number(from) && slot <= Number(to))?.[2][1];
  const port = owner(keySlot(roomId));
  if (port === undefined) throw new Error(`no master owns the slot of ${roomId}`);
  const keys = /** @type {[string, string[]]} */ (await send(['SCAN', '0', 'MATCH', 'presence:nodes:{*}', 'COUNT', '100000']))[1];
  const inUse = keys
    .map((key) => /^presence:nodes:\{([^}]*)\}$/.exec(String(key))?.[1])
    .filter((tag) => tag !== undefined && owner(keySlot(tag)) === port)
    .sort();
  if (inUse.length > 0) return /** @type {string} */ (inUse[0]);
  const first = Math.min(...ranges.filter(([, , [, at]]) => at === port).map(([from]) => Number(from)));
  return tagsBySlot()[first];
}

/**
 * The engine of the test server at `url`: its own, else PRESENCE_TEST_ENGINE's.
 * @param {string} url
 */
function engineOf(url) {
  return configs.get(url)?.engine ?? ENGINE;
}

/**
 * The script library's calls with the settings of the test server at `url`, sent through `send`.
 * @param {string} url
 * @param {(args: string[]) => Promise<unknown>} send
 * @param {{cluster: boolean, tagOf: (key: string) => string}} form
 */
function scriptCalls(url, send, { cluster, tagOf }) {
  const { staleAfter, ttl = 21600 } = configs.get(url) ?? { staleAfter: 90 };
  return new ScriptCalls({ send: (_key, args) => send(args), settings: { ttl, staleAfter, maxDataBytes: 1024 }, cluster, tagOf });
}

/**
 * Lets a test's plain client of a server (or of one cluster node) run `PRESENCE.LIST` and
 * `PRESENCE.COUNT` whatever the engine: on the script engine, they become the same calls of the
 * script library (loaded again when the server lost it), and on one server `INFO presence`
 * answers the sweep counters from the events ({@link countSweeps}). Other commands pass through.
 * @param {import('redis').RedisClientType} client
 * @param {string} url the server's URL
 * @param {{cluster?: boolean}} [options] whether it is a node of a cluster (keys in cluster form)
 */
function readsPresence(client, url, { cluster = false } = {}) {
  if (engineOf(url) === 'module') return;
  const send = client.sendCommand.bind(client);
  /** The shard tag of the call being written (cluster form), set just before it is written. */
  let tag = '';
  const calls = scriptCalls(url, send, { cluster, tagOf: () => tag });
  /**
   * @param {string[]} args
   * @param {string} roomTag
   */
  const translate = ([command, roomId, ...rest], roomTag) => {
    tag = roomTag;
    if (command.toUpperCase() === 'PRESENCE.COUNT') return calls.count(roomId);
    const options = { withSockets: rest.includes('WITHSOCKETS'), withData: rest.includes('WITHDATA') };
    const limit = rest.indexOf('LIMIT');
    return calls.list(roomId, limit < 0 ? options : { ...options, limit: Number(rest[limit + 1]) });
  };
  let loaded = false;
  const sweeps = cluster ? null : countSweeps(client);
  client.sendCommand = async (/** @type {string[]} */ args, /** @type {any} */ options) => {
    const command = String(args[0]).toUpperCase();
    if (sweeps && command === 'INFO' && String(args[1]).toLowerCase() === 'presence') return sweeps.info();
    if (command !== 'PRESENCE.LIST' && command !== 'PRESENCE.COUNT') return send(args, options);
    const roomTag = cluster ? await clusterTagOf(send, args[1]) : '';
    if (!loaded) {
      await calls.reload('');
      loaded = true;
    }
    try {
      return await send(translate(args, roomTag), options);
    } catch (err) {
      if (!calls.lost(err)) throw err;
      await calls.reload('');
      return send(translate(args, roomTag), options);
    }
  };
}

/**
 * What an operator runs after writing presence keys by hand on the script engine: the reconcile
 * of one room of the standalone test server at `url` through `client` (nothing with the module,
 * which follows every write as it happens).
 * @param {import('redis').RedisClientType} client
 * @param {string} url
 * @param {string} roomId
 */
async function reconcileRoom(client, url, roomId) {
  if (engineOf(url) === 'module') return;
  const send = (/** @type {string[]} */ args) => client.sendCommand(args);
  const calls = scriptCalls(url, send, { cluster: false, tagOf: () => '' });
  await calls.reload('');
  let cursor = '0';
  do {
    cursor = String(/** @type {unknown[]} */ (await send(calls.reconcile(roomId, cursor, 1000)))[0]);
  } while (cursor !== '0');
}

/** The reasons of a `force-leave` the sweep announces (a removal the module counts in `presence_swept`). */
const SWEPT = new Set(['stale', 'expired', 'node-down', 'no-ttl', 'evicted']);

/**
 * Counts one `force-leave` in `counts` as the module's sweep counters would: `swept` for a
 * removal by the sweep, `nodeDown` for one through a node that went down.
 * @param {{swept: number, nodeDown: number}} counts
 * @param {string} reason
 */
function countSweep(counts, reason) {
  if (SWEPT.has(reason)) counts.swept += 1;
  if (reason === 'node-down') counts.nodeDown += 1;
}

/**
 * The module's sweep counters for the script engine, which has no `INFO presence`: counted from
 * the `force-leave` events published on the server since `client` was made, and answered as the
 * module's `INFO presence` lines `presence_swept` and `presence_swept_node_down`.
 * @param {import('redis').RedisClientType} client
 */
function countSweeps(client) {
  const counts = { swept: 0, nodeDown: 0 };
  const subscriber = client.duplicate();
  subscriber.on('error', () => {});
  const subscribed = subscriber
    .connect()
    .then(() => subscriber.subscribe('__presence@0__:force-leave', (message) => countSweep(counts, JSON.parse(message).reason)));
  const destroy = client.destroy.bind(client);
  client.destroy = () => {
    subscriber.destroy();
    destroy();
  };
  return {
    async info() {
      await subscribed;
      return `# presence\r\npresence_swept:${counts.swept}\r\npresence_swept_node_down:${counts.nodeDown}\r\n`;
    },
  };
}

module.exports = { ENGINE, SCRIPT_ENGINE, serverArguments, prepareServer, engineOptions, readsPresence, reconcileRoom, countSweep };
