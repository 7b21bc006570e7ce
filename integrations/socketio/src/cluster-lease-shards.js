'use strict';

const { keySlot, tagsBySlot, SLOTS } = require('./slots');

/** @typedef {import('./topology').LeaseShards} LeaseShards */

/**
 * Where the lease of a node lives on a Redis Cluster: one key on every master (each shard
 * judges the presences it holds by its own lease keys), `{<tag>}<node>` with a tag that hashes
 * to a slot of that master. A master keeps its tag while it owns the tag's slot (through a
 * failover too, so that the promoted replica's copy of the key is renewed); a master that
 * lost it, or a new one, takes the tag of its first slot. With the script engine, every master
 * takes the tag of its first slot ({@link ClusterLeaseShards#followFirstSlots}).
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
    /** Whether a master keeps its tag while it owns the tag's slot (see the class's doc). */
    this.sticky = true;
  }

  /**
   * From now on each master's tag is the tag of its first slot, whatever it was before: what
   * the script engine needs, whose shard keys live under the tag, so that every app server
   * names a shard's keys the same from the same map.
   */
  followFirstSlots() {
    this.sticky = false;
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
      const kept = !this.sticky
        ? undefined
        : (this.tags.get(address) ?? [...this.tags.values()].find((tag) => this.#addressOf(tag) === address));
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
