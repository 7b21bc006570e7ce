'use strict';

const { StandaloneTopology } = require('./topology-standalone');
const { ClusterTopology } = require('./cluster');

/**
 * @typedef {import('./server').PresenceRedisClient} PresenceRedisClient
 * @typedef {import('./server').PresenceRedisCluster} PresenceRedisCluster
 * @typedef {import('./server').PresenceLogger} PresenceLogger
 * @typedef {import('./presence-events').PresenceEvent} PresenceEvent
 */

/**
 * The pub/sub side: hands the module's events to `onEvent`, and asks with `onResubscribed` for
 * a re-read of the rooms whose events may have been lost (`undefined`: every room).
 * @typedef {object} Subscriber
 * @property {() => Promise<void>} start subscribes; resolves once Redis confirmed it
 * @property {(roomId: string, timeoutMs: number) => Promise<void>} watch follows the events of
 *   a room, resolving once they are followed or after `timeoutMs`; never rejects
 * @property {(roomId: string) => void} unwatch stops following the events of a room
 * @property {() => Promise<void>} close
 */

/**
 * @typedef {object} SubscriberOptions
 * @property {number} db
 * @property {(event: PresenceEvent) => void} onEvent
 * @property {(rooms: string[] | undefined) => void} onResubscribed
 * @property {PresenceLogger} logger
 */

/**
 * One key of the node's lease: `id` names its shard, `address` its master (null on a
 * standalone server), `key(nodeId)` is the key of a node there.
 * @typedef {object} LeaseShard
 * @property {string} id
 * @property {string | null} address
 * @property {(nodeId: string) => string} key
 */

/**
 * Where the keys of the node's lease live.
 * @typedef {object} LeaseShards
 * @property {() => LeaseShard[]} current the keys as the map places them now
 * @property {(address: string | null) => boolean} holdsPresences whether this server holds (or
 *   may hold) a presence on the master at `address`: a lease found lost there is a loss
 * @property {(key: string) => string} tagOf the tag (the `id` of its {@link LeaseShard}) of the
 *   master of `key`'s slot (`''` on one server): where the script engine keeps that shard's keys
 * @property {() => Promise<void>} adoptTagsInUse takes the tags under which the script engine
 *   already keeps each master's shard keys (found on the masters), so that every app server
 *   names a shard the same
 */

/**
 * A multi-command of node-redis, as {@link Topology} builds it.
 * @typedef {object} Transaction
 * @property {() => Promise<unknown[]>} exec
 */

/**
 * What differs between one Redis server and a Redis Cluster, behind one interface: where a
 * command goes, which pub/sub connection(s) follow the events, where the node's lease lives
 * and how a join meets a missing lease.
 * @typedef {object} Topology
 * @property {boolean} isCluster whether it is a Redis Cluster
 * @property {number} joinAttempts attempts of one join: a second one when the node's lease was
 *   lost while the first was under way (through the fresh node); on a cluster one more, since a
 *   first `NOLEASE` may come from a master new to this node, which the lease is renewed on first
 * @property {boolean} renewsOnNoLease whether a first `NOLEASE` renews the lease (a master may
 *   be new to the node) rather than count as the loss of the lease
 * @property {(key: string) => void} ensureReady throws a `PresenceError` unless the connection
 *   that serves `key` is up
 * @property {(key: string, args: string[], timeoutMs: number) => Promise<unknown>} send one
 *   command, routed by `key`
 * @property {(key: string, commands: string[][]) => Transaction} transaction a `MULTI` of
 *   `commands`, routed by `key`
 * @property {(code: string | null) => 'pause' | 'now' | 'never'} retryAfter when a command that
 *   failed with the error reply `code` (null: without a reply) is sent again, `TRYAGAIN` and
 *   `NOLEASE` aside
 * @property {(options: SubscriberOptions) => Subscriber} subscriber
 * @property {(roomsHeld: () => Iterable<string>) => LeaseShards} leaseShards where the node's
 *   lease lives; `roomsHeld` lists the rooms this server holds (or may hold) presences in
 * @property {() => Promise<void>} close after this resolves the application may close its client
 */

/**
 * Tells whether `redis` is a node-redis cluster client (`createCluster`), by its API: a slot
 * map (`slots`), its `masters` and `nodeClient`.
 * @param {PresenceRedisClient} redis
 * @returns {redis is PresenceRedisCluster}
 */
function isClusterClient(redis) {
  return (
    'slots' in redis &&
    Array.isArray(redis.slots) &&
    'masters' in redis &&
    Array.isArray(redis.masters) &&
    'nodeClient' in redis &&
    typeof redis.nodeClient === 'function'
  );
}

/**
 * The topology of the application's client: a cluster's, or one server's.
 * @param {PresenceRedisClient} redis
 * @param {PresenceLogger} logger
 * @returns {Topology}
 */
function createTopology(redis, logger) {
  return isClusterClient(redis) ? new ClusterTopology(redis, logger) : new StandaloneTopology(redis);
}

exports.createTopology = createTopology;
exports.isClusterClient = isClusterClient;
