'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { PresenceSubscriber } = require('./presence-subscriber');

/**
 * @typedef {import('./topology').Topology} Topology
 * @typedef {import('redis').RedisClientType<any, any, any, any, any>} RedisClient
 */

/**
 * One Redis server: every command goes to the application's client, a duplicate of it
 * subscribes to every event of the database, and the node's lease is one key named by the
 * node id.
 * @implements {Topology}
 */
class StandaloneTopology {
  /** @param {RedisClient} redis a connected node-redis client */
  constructor(redis) {
    this.redis = redis;
    this.isCluster = false;
    this.joinAttempts = 2;
    this.renewsOnNoLease = false;
  }

  /** @param {string} _key */
  ensureReady(_key) {
    if (!this.redis.isReady) throw new PresenceError(ErrorCode.UNAVAILABLE, 'Redis is not connected');
  }

  /**
   * @param {string} _key
   * @param {string[]} args
   * @param {number} timeoutMs
   */
  send(_key, args, timeoutMs) {
    return this.redis.sendCommand(args, { timeout: timeoutMs });
  }

  /**
   * @param {string} _key
   * @param {string[][]} commands
   */
  transaction(_key, commands) {
    const multi = this.redis.multi();
    for (const args of commands) multi.addCommand(args);
    return multi;
  }

  /**
   * One server has no other node to wait for: only `TRYAGAIN` is tried again.
   * @param {string | null} _code
   * @returns {'never'}
   */
  retryAfter(_code) {
    return 'never';
  }

  /** @param {import('./topology').SubscriberOptions} options */
  subscriber(options) {
    return new PresenceSubscriber(this.redis, options);
  }

  /**
   * The lease is one key, named by the node id; its loss is always one.
   * @param {() => Iterable<string>} _roomsHeld
   * @returns {import('./topology').LeaseShards}
   */
  leaseShards(_roomsHeld) {
    return {
      current: () => [{ id: '', address: null, key: (nodeId) => nodeId }],
      holdsPresences: () => true,
      tagOf: () => '',
      adoptTagsInUse: async () => {},
    };
  }

  /** Nothing of its own to close. */
  async close() {}
}

exports.StandaloneTopology = StandaloneTopology;
