'use strict';

/**
 * The options of a LIST call.
 * @typedef {object} ListOptions
 * @property {boolean} [withSockets] each user followed by the socket holding its presence
 * @property {boolean} [withData] each user followed by its data
 * @property {number} [limit] at most this many users
 */

/**
 * How an engine writes the calls of the contract (SPEC §4, §10, §12) as Redis commands. Every
 * call's reply is the module's: the same values, the same error replies.
 * @typedef {object} EngineCalls
 * @property {'module' | 'script'} name
 * @property {(roomId: string, userId: string, socket: string, data: string | null) => string[]} join
 * @property {(roomId: string, userId: string, socket: string) => string[]} beat
 * @property {(roomId: string, userId: string, socket: string) => string[]} leave
 * @property {(roomId: string, userId: string, socket: string, data: string) => string[]} update
 * @property {(roomId: string, options: ListOptions) => string[]} list
 * @property {(roomId: string) => string[]} count
 * @property {(key: string, ms: number) => string[]} lease a node's lease (`key` as the lease shards name it)
 * @property {(err: unknown) => boolean} lost whether `err` says the server no longer has the
 *   engine's code (a flushed or never loaded script library): the call is tried again after
 *   {@link EngineCalls.reload}
 * @property {(key: string) => Promise<void>} reload loads the engine's code on the server of `key`
 */

/**
 * The module's commands (`PRESENCE.*`): the code is the server's, nothing to load.
 * @implements {EngineCalls}
 */
class ModuleCalls {
  constructor() {
    /** @type {'module'} */
    this.name = 'module';
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string | null} data
   */
  join(roomId, userId, socket, data) {
    const args = ['PRESENCE.JOIN', roomId, userId, socket];
    if (data !== null) args.push('DATA', data);
    return args;
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   */
  beat(roomId, userId, socket) {
    return ['PRESENCE.BEAT', roomId, userId, socket];
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   */
  leave(roomId, userId, socket) {
    return ['PRESENCE.LEAVE', roomId, userId, socket];
  }

  /**
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string} data
   */
  update(roomId, userId, socket, data) {
    return ['PRESENCE.UPDATE', roomId, userId, socket, data];
  }

  /**
   * @param {string} roomId
   * @param {ListOptions} options
   */
  list(roomId, options) {
    return ['PRESENCE.LIST', roomId, ...listArguments(options)];
  }

  /** @param {string} roomId */
  count(roomId) {
    return ['PRESENCE.COUNT', roomId];
  }

  /**
   * @param {string} key
   * @param {number} ms
   */
  lease(key, ms) {
    return ['PRESENCE.LEASE', key, String(ms)];
  }

  /**
   * The module's commands are never lost.
   * @param {unknown} _err
   */
  lost(_err) {
    return false;
  }

  /** @param {string} _key */
  async reload(_key) {}
}

/**
 * The options of LIST after the room, as the module and the script library take them.
 * @param {ListOptions} options
 * @returns {string[]}
 */
function listArguments({ withSockets = false, withData = false, limit }) {
  const args = [];
  if (withSockets) args.push('WITHSOCKETS');
  if (withData) args.push('WITHDATA');
  if (limit !== undefined) args.push('LIMIT', String(limit));
  return args;
}

exports.ModuleCalls = ModuleCalls;
exports.listArguments = listArguments;
