'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { keySlot } = require('./slots');
const { ClusterMap } = require('./cluster-map');
const { ClusterSubscriber } = require('./cluster-subscriber');
const { ClusterLeaseShards } = require('./cluster-lease-shards');

/**
 * @typedef {import('./topology').Topology} Topology
 * @typedef {import('./server').PresenceRedisCluster} PresenceRedisCluster
 */

/**
 * A Redis Cluster: each command goes to the master of its key's slot (node-redis follows
 * `MOVED` and `ASK` for single commands; after a `MOVED` or a failure the cluster map is read
 * again, so that a promoted replica takes over within a pause or two), events come through a
 * sharded subscription per room, and the node's lease is a key on every master.
 * @implements {Topology}
 */
class ClusterTopology {
  /**
   * @param {PresenceRedisCluster} cluster a connected node-redis cluster client
   * @param {import('./server').PresenceLogger} logger
   */
  constructor(cluster, logger) {
    this.cluster = cluster;
    this.map = new ClusterMap(cluster, logger);
    this.isCluster = true;
    this.joinAttempts = 3;
    this.renewsOnNoLease = true;
  }

  /** @param {string} key */
  ensureReady(key) {
    if (!this.cluster.isOpen) throw new PresenceError(ErrorCode.UNAVAILABLE, 'the Redis Cluster client is closed');
    const slot = keySlot(key);
    if (!this.map.reachable(slot)) {
      // Tried again until the deadline (see retryAfter): node-redis reconnects to it.
      throw new PresenceError(ErrorCode.UNAVAILABLE, `the master of slot ${slot} (${this.map.masterOf(slot)?.address}) is not connected`);
    }
  }

  /**
   * @param {string} key
   * @param {string[]} args
   * @param {number} timeoutMs
   */
  send(key, args, timeoutMs) {
    return this.cluster.sendCommand(key, false, args, { timeout: timeoutMs });
  }

  /**
   * @param {string} key
   * @param {string[][]} commands
   */
  transaction(key, commands) {
    const multi = this.cluster.multi(key);
    for (const args of commands) multi.addCommand(key, false, args);
    return multi;
  }

  /**
   * The room is moving between shards (`ASK`), the cluster is down for a moment
   * (`CLUSTERDOWN`), or the master cannot be reached: tried again after a pause; after a
   * `MOVED`, at once, once the map is read again.
   * @param {string | null} code
   * @returns {'pause' | 'now' | 'never'}
   */
  retryAfter(code) {
    if (code === 'ASK') return 'pause';
    if (code === 'MOVED') {
      this.map.refresh();
      return 'now';
    }
    if (code === null || code === 'CLUSTERDOWN') {
      this.map.refresh();
      return 'pause';
    }
    return 'never';
  }

  /** @param {import('./topology').SubscriberOptions} options */
  subscriber(options) {
    return new ClusterSubscriber(this.map, options);
  }

  /** @param {() => Iterable<string>} roomsHeld */
  leaseShards(roomsHeld) {
    return new ClusterLeaseShards(this.map, roomsHeld);
  }

  /** Reads the map no more (see {@link ClusterMap#close}). */
  close() {
    return this.map.close();
  }
}

exports.ClusterTopology = ClusterTopology;
