'use strict';

/** Hash slots of a Redis Cluster. */
const SLOTS = 16384;

/** The shortest time between two refreshes of the cluster map. */
const REFRESH_MIN_INTERVAL_MS = 200;

/** Characters of the lease tags: id characters that need no escaping anywhere. */
const TAG_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i += 1) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM of `bytes`, the checksum Redis Cluster hashes keys with. */
function crc16(bytes) {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/**
 * The hash slot of a key, as Redis computes it: of the hash tag (the part between the first
 * `{` and the next `}`, when not empty), else of the whole key.
 * @param {string} key
 * @returns {number}
 */
function keySlot(key) {
  const bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(bytes) % SLOTS;
}

let slotTags = null;

/**
 * A short tag per hash slot (`tags[slot]` hashes to `slot`), found once by walking the strings
 * of `TAG_CHARS` by length: one, two, three characters… until every slot has one.
 * @returns {string[]}
 */
function tagsBySlot() {
  if (slotTags) return slotTags;
  const tags = new Array(SLOTS);
  let missing = SLOTS;
  let layer = [''];
  while (missing > 0) {
    const next = [];
    for (const prefix of layer) {
      for (const char of TAG_CHARS) {
        const tag = prefix + char;
        next.push(tag);
        const slot = crc16(Buffer.from(tag)) % SLOTS;
        if (tags[slot] === undefined) {
          tags[slot] = tag;
          missing -= 1;
        }
      }
    }
    layer = next;
  }
  slotTags = tags;
  return tags;
}

/**
 * Tells whether `redis` is a node-redis cluster client (`createCluster`), by its API: a slot
 * map (`slots`), its `masters` and `nodeClient`.
 * @param {any} redis
 * @returns {boolean}
 */
function isClusterClient(redis) {
  return Array.isArray(redis.slots) && Array.isArray(redis.masters) && typeof redis.nodeClient === 'function';
}

/**
 * The slot map of a node-redis cluster client, refreshed on demand. node-redis reads the map
 * again by itself only after a `MOVED` reply, so after a master dies it keeps sending to the
 * dead address; a refresh after any failure finds the promoted replica as soon as the cluster
 * has promoted it. Listeners of {@link ClusterTopology#onChange} learn when the masters or the
 * slots they own changed, whoever read the map.
 */
class ClusterTopology {
  /**
   * @param {any} cluster a connected node-redis cluster client
   * @param {{warn: (message: string) => unknown}} logger
   */
  constructor(cluster, logger) {
    this.cluster = cluster;
    this.logger = logger;
    this.signature = this.#signature();
    this.refreshing = null;
    this.closed = false;
    this.lastRefreshAt = -Infinity;
    this.again = false;
    /** The failure last logged: one line per distinct failure, not one per refresh. */
    this.lastError = null;
    /** @type {Set<() => void>} */
    this.listeners = new Set();
  }

  /**
   * The master that owns `slot`, as node-redis's map has it, or undefined while the map lacks it.
   * @param {number} slot
   * @returns {any}
   */
  masterOf(slot) {
    return this.cluster.slots[slot]?.master;
  }

  /** The masters of the map: node-redis's nodes, each with its `address`. */
  masters() {
    return this.cluster.masters;
  }

  /**
   * The node client of a master (connected by node-redis).
   * @param {any} master
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
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      // node-redis would connect a closed client's nodes again: nothing to read once it is closed.
      if (this.closed || !this.cluster.isOpen) return;
      this.lastRefreshAt = performance.now();
      // Asked first: a master that answers (node-redis falls back on the root nodes).
      const start = this.masters().find((master) => master.client && master.client.isReady) ?? this.masters()[0];
      const options = start && (start.client ? start.client.options : { socket: { host: start.host, port: start.port } });
      try {
        // node-redis's own map refresh (what it runs after a MOVED); it has no public name.
        await this.cluster._slots.rediscover({ options });
        this.lastError = null;
      } catch (err) {
        const message = `presence: cannot read the cluster map: ${err && err.message}`;
        if (message !== this.lastError) this.logger.warn(message);
        this.lastError = message;
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

module.exports = { isClusterClient, keySlot, tagsBySlot, ClusterTopology, SLOTS };
