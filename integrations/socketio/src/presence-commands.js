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
   * Joins and reads the room in one transaction.
   * @returns {Promise<{users: string[], count: number, truncated: boolean}>}
   */
  async join(roomId, userId, socketId) {
    const [, users, count] = await this.#transaction([
      ['PRESENCE.JOIN', roomId, userId, socketId],
      ['PRESENCE.LIST', roomId, 'LIMIT', String(this.maxUsers)],
      ['PRESENCE.COUNT', roomId],
    ]);
    return snapshot(users, count);
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
  async beat(roomId, userId, socketId) {
    return Number(await this.#command(['PRESENCE.BEAT', roomId, userId, socketId])) === 1;
  }

  /**
   * A clean leave.
   * @returns {Promise<boolean>} true if a presence was removed
   */
  async leave(roomId, userId, socketId) {
    return Number(await this.#command(['PRESENCE.LEAVE', roomId, userId, socketId])) === 1;
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
      throw toPresenceError(err);
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

module.exports = { PresenceCommands };
