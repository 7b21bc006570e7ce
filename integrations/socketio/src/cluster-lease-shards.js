'use strict';

const { keySlot, tagsBySlot, SLOTS } = require('./slots');

/** @typedef {import('./topology').LeaseShards} LeaseShards */

/**
 * Where the lease of a node lives on a Redis Cluster: one key on every master (each shard
 * judges the presences it holds by its own lease keys), `{<tag>}<node>` with a tag that hashes
 * to a slot of that master. A master keeps its tag while it owns the tag's slot (through a
 * failover too, so that the promoted replica's copy of the key is renewed); a master that
 * lost it, or a new one, takes the tag of its first slot. The script engine keeps a shard's
 * keys under its tag, which every app server must name the same: a server starting takes the
 * tags in use ({@link ClusterLeaseShards#adoptTagsInUse}).
 * @implements {LeaseShards}
 */
class ClusterLeaseShards {
  /**
   * @param {import('./cluster-map').ClusterMap} map
   * @param {() => Iterable<string>} roomsHeld the rooms this server holds (or may hold) presences in
   */
  constructor(map, roomsHeld) {
    this.map = map;
    this.roomsHeld = roomsHeld;
    /** @type {Map<string, string>} master address → tag */
    this.tags = new Map();
  }

  /**
   * Takes, for each master, the tag of the shard keys the script engine already keeps there
   * (`presence:nodes:{<tag>}`, found with `SCAN` on the master), so that an app server started
   * after a resharding names each shard as the servers already running do (they keep their
   * tags, see the class's doc), not by the master's first slot now. Where several are found,
   * the smallest that hashes to a slot of that master.
   * @returns {Promise<void>}
   */
  async adoptTagsInUse() {
    this.current();
    for (const master of this.map.masters()) {
      const client = await this.map.nodeClient(master);
      /** @type {string[]} */
      const found = [];
      let cursor = '0';
      do {
        const [next, keys] = /** @type {[string, string[]]} */ (
          await client.sendCommand(['SCAN', cursor, 'MATCH', 'presence:nodes:{*}', 'COUNT', '1000'])
        );
        cursor = String(next);
        for (const key of keys) {
          const tag = /^presence:nodes:\{([^}]*)\}$/.exec(String(key))?.[1];
          if (tag !== undefined && this.#addressOf(tag) === master.address) found.push(tag);
        }
      } while (cursor !== '0');
      if (found.length > 0) this.tags.set(master.address, found.sort()[0]);
    }
  }

  /** @returns {import('./topology').LeaseShard[]} */
  current() {
    this.map.check();
    /** @type {Map<string, number>} */
    const firstSlots = new Map();
    for (let slot = 0; slot < SLOTS; slot += 1) {
      const address = this.map.masterOf(slot)?.address;
      if (address !== undefined && !firstSlots.has(address)) firstSlots.set(address, slot);
    }
    /** @type {Map<string, string>} */
    const tags = new Map();
    for (const [address, slot] of firstSlots) {
      const kept = this.tags.get(address) ?? [...this.tags.values()].find((tag) => this.#addressOf(tag) === address);
      tags.set(address, kept !== undefined && this.#addressOf(kept) === address ? kept : tagsBySlot()[slot]);
    }
    this.tags = tags;
    return [...tags].map(([address, tag]) => ({ id: tag, address, key: (nodeId) => `{${tag}}${nodeId}` }));
  }

  /**
   * The tag of the master of `key`'s slot; the tag of that slot when the map has no master for it.
   * @param {string} key
   * @returns {string}
   */
  tagOf(key) {
    const address = this.#addressOf(key);
    if (address !== undefined && !this.tags.has(address)) this.current();
    return (address !== undefined && this.tags.get(address)) || tagsBySlot()[keySlot(key)];
  }

  /**
   * Whether a room this server holds a presence in (or may) lives on the master at `address`.
   * @param {string | null} address
   * @returns {boolean}
   */
  holdsPresences(address) {
    for (const roomId of this.roomsHeld()) if (this.#addressOf(roomId) === address) return true;
    return false;
  }

  /**
   * The address of the master of a key's slot, as the map has it.
   * @param {string} key
   */
  #addressOf(key) {
    return this.map.masterOf(keySlot(key))?.address;
  }
}

exports.ClusterLeaseShards = ClusterLeaseShards;
