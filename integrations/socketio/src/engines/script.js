'use strict';

const { ScriptLibrary } = require('./script-library');
const { listArguments } = require('./module');

/**
 * @typedef {import('./module').ListOptions} ListOptions
 * @typedef {import('./module').EngineCalls} EngineCalls
 */

/**
 * The settings every call of the script library carries (`lua/README.md`): the liveness rule's
 * `ttl` and `staleAfter` in seconds and the longest data, the same on every app server.
 * @typedef {object} ScriptSettings
 * @property {number} ttl
 * @property {number} staleAfter
 * @property {number} maxDataBytes
 */

/**
 * The script engine's calls (SPEC §13): the contract's commands as calls of the script library,
 * with their keys (the room's keys and its index, under the room's hash tag on a cluster) and
 * the settings. On a cluster, the shard's own keys (node leases, the sweep's schedule) live
 * under `tagOf(key)`, a hash tag on the master of `key`'s slot: the tag of the node's lease key
 * there.
 * @implements {EngineCalls}
 */
class ScriptCalls {
  /**
   * @param {object} options
   * @param {(key: string, args: string[]) => Promise<unknown>} options.send sends one command to
   *   the server of a key (to load the library)
   * @param {ScriptSettings} options.settings
   * @param {boolean} options.cluster whether the keys take the cluster form
   * @param {(key: string) => string} options.tagOf the tag of the shard's keys on the master of `key`
   */
  constructor({ send, settings, cluster, tagOf }) {
    /** @type {'script'} */
    this.name = 'script';
    this.library = new ScriptLibrary(send);
    this.settings = settings;
    this.cluster = cluster;
    this.tagOf = tagOf;
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string | null} data
   */
  join(roomId, userId, socket, data) {
    const args = [roomId, userId, socket];
    if (data !== null) args.push('DATA', data);
    return this.#presenceCall('join', roomId, userId, args);
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   */
  beat(roomId, userId, socket) {
    return this.#presenceCall('beat', roomId, userId, [roomId, userId, socket]);
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   */
  leave(roomId, userId, socket) {
    return this.#presenceCall('leave', roomId, userId, [roomId, userId, socket]);
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string} data
   */
  update(roomId, userId, socket, data) {
    return this.#presenceCall('update', roomId, userId, [roomId, userId, socket, data]);
  }

  /**
   * @param {string} roomId
   * @param {ListOptions} options
   */
  list(roomId, options) {
    return this.#call('list', this.#indexKeys(roomId), roomId, [roomId, ...listArguments(options)]);
  }

  /** @param {string} roomId */
  count(roomId) {
    return this.#call('count', this.#indexKeys(roomId), roomId, [roomId]);
  }

  /**
   * @param {string} key the lease key as the lease shards name it: the node id, or
   *   `{<tag>}<node>` on a cluster
   * @param {number} ms
   */
  lease(key, ms) {
    const tag = this.cluster ? (/^\{([^}]*)\}/.exec(key)?.[1] ?? '') : '';
    return this.#call('lease', [`presence:node:${key}`, this.#shardKey('nodes', tag)], key, [key, String(ms)], tag);
  }

  /**
   * One step of the sweep of the shard whose keys are under `tag` (`''` on one server): at most
   * `limit` removals; the reply is the number removed, or -1 while another sweeper holds the
   * shard's sweep lease.
   * @param {string} tag
   * @param {string} owner
   * @param {number} leaseMs
   * @param {number} limit
   */
  sweep(tag, owner, leaseMs, limit) {
    const keys = [this.#shardKey('rooms', tag), this.#shardKey('nodes', tag), this.#shardKey('sweep-lease', tag)];
    return this.#call('sweep', keys, keys[0], [owner, String(leaseMs), String(limit)], tag);
  }

  /**
   * One `SCAN` step of the reconcile of one room's index with its keys (presences written,
   * changed or deleted by clients that bypass the engine): the reply is `[next cursor, presences
   * changed]`; start with `0` and go on until the cursor is `0` again.
   * @param {string} roomId
   * @param {string} cursor
   * @param {number} count
   */
  reconcile(roomId, cursor, count) {
    return this.#call('reconcile', this.#indexKeys(roomId), roomId, [roomId, cursor, String(count)]);
  }

  /**
   * One `SCAN` step of the reconcile of every presence key of the shard whose keys are under
   * `tag`: the reply is `[next cursor, presences changed]`.
   * @param {string} tag
   * @param {string} cursor
   * @param {number} count
   */
  reconcileAll(tag, cursor, count) {
    const keys = [this.#shardKey('rooms', tag)];
    return this.#call('reconcile_all', keys, keys[0], [cursor, String(count)], tag);
  }

  /**
   * The key a shard call with `tag` is routed by.
   * @param {string} tag
   */
  shardRoute(tag) {
    return this.#shardKey('rooms', tag);
  }

  /** @param {unknown} err */
  lost(err) {
    return this.library.lost(err);
  }

  /** @param {string} key */
  reload(key) {
    return this.library.load(key);
  }

  /**
   * A call on one presence and its room.
   * @param {string} op
   * @param {string} roomId
   * @param {string} userId
   * @param {string[]} args
   */
  #presenceCall(op, roomId, userId, args) {
    const room = this.#roomPart(roomId);
    const keys = [`room:presence:${room}:${userId}`, `room:presence-data:${room}:${userId}`, ...this.#indexKeys(roomId)];
    return this.#call(op, keys, roomId, args);
  }

  /** @param {string} roomId */
  #indexKeys(roomId) {
    const index = `room:presence-index:${this.#roomPart(roomId)}`;
    return [index, `${index}:order`, `${index}:nodes`];
  }

  /** @param {string} roomId */
  #roomPart(roomId) {
    return this.cluster ? `{${roomId}}` : roomId;
  }

  /**
   * @param {string} name
   * @param {string} tag
   */
  #shardKey(name, tag) {
    return this.cluster ? `presence:${name}:{${tag}}` : `presence:${name}`;
  }

  /**
   * The command of entry point `op`: its keys, then the settings, then its arguments.
   * @param {string} op
   * @param {string[]} keys
   * @param {string} route the key the call is routed by (its shard's tag is the call's)
   * @param {string[]} args
   * @param {string} [tag] the shard's tag, when the call names it
   */
  #call(op, keys, route, args, tag) {
    const { ttl, staleAfter, maxDataBytes } = this.settings;
    const shardTag = tag ?? (this.cluster ? this.tagOf(route) : '');
    const settings = [String(ttl), String(staleAfter), String(maxDataBytes), this.cluster ? 'cluster' : 'standalone', shardTag];
    return this.library.command(op, keys, [...settings, ...args]);
  }
}

exports.ScriptCalls = ScriptCalls;
