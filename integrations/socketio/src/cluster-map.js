'use strict';

const { SLOTS } = require('./slots');
const { sleep } = require('./retry');
const { errorMessage, RepeatedWarnings } = require('./warnings');

/** The shortest time between two refreshes of the cluster map. */
const REFRESH_MIN_INTERVAL_MS = 200;

/**
 * The slot map of a node-redis cluster client, refreshed on demand. node-redis reads the map
 * again by itself only after a `MOVED` reply, so after a master dies it keeps sending to the
 * dead address; a refresh after any failure finds the promoted replica as soon as the cluster
 * has promoted it. Listeners of {@link ClusterMap#onChange} learn when the masters or the
 * slots they own changed, whoever read the map.
 */
class ClusterMap {
  /**
   * @param {RedisCluster} cluster a connected node-redis cluster client
   * @param {PresenceLogger} logger
   */
  constructor(cluster, logger) {
    this.cluster = cluster;
    this.signature = this.#signature();
    /** @type {Promise<void> | null} */
    this.refreshing = null;
    this.closed = false;
    this.lastRefreshAt = -Infinity;
    this.again = false;
    /** One line per distinct failure, not one per refresh. */
    this.warnings = new RepeatedWarnings(logger);
    /** @type {Set<() => void>} */
    this.listeners = new Set();
  }

  /**
   * The master that owns `slot`, as node-redis's map has it, or undefined while the map lacks it.
   * @param {number} slot
   * @returns {MasterNode | undefined}
   */
  masterOf(slot) {
    return this.cluster.slots[slot]?.master;
  }

  /**
   * The masters of the map: node-redis's nodes, each with its `address`.
   * @returns {MasterNode[]}
   */
  masters() {
    return this.cluster.masters;
  }

  /**
   * The node client of a master (connected by node-redis).
   * @param {MasterNode} master
   */
  nodeClient(master) {
    return this.cluster.nodeClient(master);
  }

  /**
   * Whether the connection to the master that owns `slot` is up (or not made yet): false while
   * node-redis reconnects to it.
   * @param {number} slot
   */
  reachable(slot) {
    const master = this.masterOf(slot);
    return master !== undefined && (master.client === undefined || master.client.isReady);
  }

  /** @param {() => void} listener called after the masters or their slots changed */
  onChange(listener) {
    this.listeners.add(listener);
  }

  /**
   * Reads the cluster map again (at most every 200 ms; calls meanwhile share the read under way
   * or the next one), then tells the listeners if it changed. Never rejects.
   * @returns {Promise<void>}
   */
  refresh() {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = this.#refreshLoop().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /**
   * Reads the map no more, once the read under way (if any) is done: after this resolves the
   * application may close its cluster client (a read finishing later would open connections
   * to its nodes again).
   * @returns {Promise<void>}
   */
  async close() {
    this.closed = true;
    await this.refreshing;
  }

  /** Tells the listeners if the map changed since they last heard (node-redis may have read it after a MOVED). */
  check() {
    const signature = this.#signature();
    if (signature === this.signature) return;
    this.signature = signature;
    for (const listener of this.listeners) listener();
  }

  async #refreshLoop() {
    do {
      this.again = false;
      const waitMs = this.lastRefreshAt + REFRESH_MIN_INTERVAL_MS - performance.now();
      if (waitMs > 0) await sleep(waitMs);
      // node-redis would connect a closed client's nodes again: nothing to read once it is closed.
      if (this.closed || !this.cluster.isOpen) return;
      this.lastRefreshAt = performance.now();
      // Asked first: a master that answers (node-redis falls back on the root nodes).
      const start = this.masters().find((master) => master.client && master.client.isReady) ?? this.masters()[0];
      const options = start && (start.client ? start.client.options : { socket: { host: start.host, port: start.port } });
      try {
        // node-redis's own map refresh (what it runs after a MOVED); it has no public name.
        // @ts-expect-error `_slots` is not in PresenceRedisCluster, and its `rediscover` (internal) is given only the options of the node to start from, not a client
        await this.cluster._slots.rediscover({ options });
        this.warnings.clear();
      } catch (err) {
        this.warnings.warn(`presence: cannot read the cluster map: ${errorMessage(err)}`);
      }
      this.check();
    } while (this.again);
  }

  /** The masters and their slot ranges, as one string. */
  #signature() {
    const parts = [];
    let from = 0;
    for (let slot = 1; slot <= SLOTS; slot += 1) {
      if (slot < SLOTS && this.masterOf(slot)?.address === this.masterOf(from)?.address) continue;
      parts.push(`${from}-${slot - 1}:${this.masterOf(from)?.address}`);
      from = slot;
    }
    return parts.join(',');
  }
}

/** @typedef {import('./server').PresenceRedisCluster} RedisCluster */
/** @typedef {RedisCluster['masters'][number]} MasterNode */
/** @typedef {import('./server').PresenceLogger} PresenceLogger */

exports.ClusterMap = ClusterMap;
