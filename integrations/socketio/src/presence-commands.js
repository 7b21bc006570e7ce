'use strict';

const { ErrorCode, PresenceError } = require('./errors');

/**
 * Tells whether `err` is an error reply of the Redis server (as opposed to a connection
 * problem). node-redis marks those with the `ErrorReply` class; its module may be a different
 * copy from the one this package would load, so the class is recognised by name.
 * @param {unknown} err
 * @returns {boolean}
 */
function isErrorReply(err) {
  for (let proto = err && Object.getPrototypeOf(err); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor && proto.constructor.name === 'ErrorReply') return true;
  }
  return false;
}

/**
 * Converts any failure of a Redis call into a {@link PresenceError}: `internal` for an error
 * reply of the server, `unavailable` for everything else (offline, timeout, closed).
 * @param {unknown} err
 * @returns {PresenceError}
 */
function toPresenceError(err) {
  if (err instanceof PresenceError) return err;
  const code = isErrorReply(err) ? ErrorCode.INTERNAL : ErrorCode.UNAVAILABLE;
  return new PresenceError(code, err instanceof Error ? err.message : String(err), err);
}

/**
 * The error of a JOIN through a node that holds no live lease (the module's `NOLEASE` reply):
 * nothing was written. Its code is `unavailable`, what a client gets if the join is not tried
 * again.
 */
class NoLeaseError extends PresenceError {
  /** @param {Error} cause the error reply */
  constructor(cause) {
    super(ErrorCode.UNAVAILABLE, cause.message, cause);
    this.name = 'NoLeaseError';
  }
}

/**
 * The `NOLEASE` error reply of one command of a transaction, if there is one.
 * @param {unknown} err what `multi.exec()` rejected with
 * @returns {Error | undefined}
 */
function noLeaseReply(err) {
  const replies = err && Array.isArray(err.replies) ? err.replies : [];
  return replies.find((reply) => reply instanceof Error && reply.message.startsWith('NOLEASE '));
}

/**
 * The module's commands, issued through a node-redis (v5) client with a deadline each.
 * Every method rejects with a {@link PresenceError}.
 */
class PresenceCommands {
  /**
   * @param {import('redis').RedisClientType} redis a connected node-redis client
   * @param {{timeoutMs: number, maxUsers: number}} options
   */
  constructor(redis, { timeoutMs, maxUsers }) {
    this.redis = redis;
    this.timeoutMs = timeoutMs;
    this.maxUsers = maxUsers;
  }

  /**
   * Joins and reads the room in one transaction. `socket` is node-qualified (`<node>/<socket id>`);
   * rejects with a {@link NoLeaseError} when that node holds no live lease.
   * @returns {Promise<{users: string[], count: number, truncated: boolean}>}
   */
  async join(roomId, userId, socket) {
    const [, users, count] = await this.#transaction([
      ['PRESENCE.JOIN', roomId, userId, socket],
      ['PRESENCE.LIST', roomId, 'LIMIT', String(this.maxUsers)],
      ['PRESENCE.COUNT', roomId],
    ]);
    return snapshot(users, count);
  }

  /**
   * Writes or renews the lease of a node for `ms` milliseconds; `ms` 0 releases it.
   * @param {string} nodeId
   * @param {number} ms
   * @returns {Promise<boolean>} whether the node held a live lease before
   */
  async lease(nodeId, ms) {
    return Number(await this.#command(['PRESENCE.LEASE', nodeId, String(ms)])) === 1;
  }

  /**
   * Reads the first `maxUsers` users and the exact live count of a room, consistently.
   * @returns {Promise<{users: string[], count: number, truncated: boolean}>}
   */
  async readRoom(roomId) {
    const [users, count] = await this.#transaction([
      ['PRESENCE.LIST', roomId, 'LIMIT', String(this.maxUsers)],
      ['PRESENCE.COUNT', roomId],
    ]);
    return snapshot(users, count);
  }

  /**
   * The heartbeat.
   * @returns {Promise<boolean>} true if refreshed, false if this socket is not in the room
   */
  async beat(roomId, userId, socket) {
    return Number(await this.#command(['PRESENCE.BEAT', roomId, userId, socket])) === 1;
  }

  /**
   * A clean leave.
   * @returns {Promise<boolean>} true if a presence was removed
   */
  async leave(roomId, userId, socket) {
    return Number(await this.#command(['PRESENCE.LEAVE', roomId, userId, socket])) === 1;
  }

  /**
   * Every live (user, socket) pair of a room.
   * @returns {Promise<Array<[string, string]>>}
   */
  async listWithSockets(roomId) {
    const flat = await this.#command(['PRESENCE.LIST', roomId, 'WITHSOCKETS']);
    const pairs = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), String(flat[i + 1])]);
    return pairs;
  }

  #ensureReady() {
    if (!this.redis.isReady) throw new PresenceError(ErrorCode.UNAVAILABLE, 'Redis is not connected');
  }

  async #command(args) {
    this.#ensureReady();
    try {
      return await this.redis.sendCommand(args, { timeout: this.timeoutMs });
    } catch (err) {
      throw toPresenceError(err);
    }
  }

  async #transaction(commands) {
    this.#ensureReady();
    const multi = this.redis.multi();
    for (const args of commands) multi.addCommand(args);
    let timer;
    const deadlinePromise = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new PresenceError(ErrorCode.UNAVAILABLE, `no reply from Redis within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([multi.exec(), deadlinePromise]);
    } catch (err) {
      const noLease = noLeaseReply(err);
      throw noLease ? new NoLeaseError(noLease) : toPresenceError(err);
    } finally {
      clearTimeout(timer);
    }
  }
}

function snapshot(users, count) {
  const list = users.map(String);
  const total = Number(count);
  return { users: list, count: total, truncated: total > list.length };
}

module.exports = { PresenceCommands, NoLeaseError };
