'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { keySlot } = require('./cluster');

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

/** Error replies that say the command could not run now, not that it was wrong. */
const NOT_NOW_REPLY = /^(TRYAGAIN|ASK|MOVED|CLUSTERDOWN) /;

/**
 * Converts any failure of a Redis call into a {@link PresenceError}: `internal` for an error
 * reply of the server, `unavailable` for everything else (offline, timeout, closed, a room
 * still moving between shards or a cluster down when the deadline came).
 * @param {unknown} err
 * @returns {PresenceError}
 */
function toPresenceError(err) {
  if (err instanceof PresenceError) return err;
  const code = isErrorReply(err) && !NOT_NOW_REPLY.test(err.message) ? ErrorCode.INTERNAL : ErrorCode.UNAVAILABLE;
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
 * The first error reply of the commands of a transaction (`multi.exec()` rejects with all of
 * their replies when some failed), else the error itself.
 * @param {unknown} err
 * @returns {unknown}
 */
function firstReplyError(err) {
  const replies = err && Array.isArray(err.replies) ? err.replies : [];
  return replies.find((reply) => reply instanceof Error) ?? err;
}

/** The code that starts an error reply (`TRYAGAIN`, `MOVED`, …), or null for another failure. */
function replyCode(err) {
  if (!isErrorReply(err)) return null;
  return /^[A-Z]+/.exec(err.message)?.[0] ?? null;
}

/** The first pause before a command that met a slot migration (TRYAGAIN) is sent again; it doubles each time. */
const RETRY_FIRST_MS = 50;

/** The longest pause between two attempts of a command. */
const RETRY_MAX_MS = 400;

/** A shard whose master cannot be reached now (node-redis reconnects to it): tried again until the deadline. */
class ShardUnreachableError extends PresenceError {
  constructor(message) {
    super(ErrorCode.UNAVAILABLE, message);
    this.name = 'ShardUnreachableError';
  }
}

/**
 * The module's commands, issued through a node-redis (v5) client or cluster client with a
 * deadline each. Every method rejects with a {@link PresenceError}.
 *
 * On a cluster each command goes to the master of its key's slot (the room; for a lease, the
 * lease key's tag): node-redis follows `MOVED` and `ASK` for single commands, this class for a
 * transaction (after a `MOVED` the map is read again; an `ASK` means the room is moving). A
 * command is tried again until its deadline, with a pause that grows from 50 to 400 ms, when
 * the room is moving between shards (`TRYAGAIN`, `ASK`), when the cluster is down for a
 * moment (`CLUSTERDOWN`), or when the shard's master cannot be reached (after a failure the
 * cluster map is read again, so that a promoted replica takes over within a pause or two).
 */
class PresenceCommands {
  /**
   * @param {any} redis a connected node-redis client or cluster client
   * @param {{timeoutMs: number, maxUsers: number, topology: import('./cluster').ClusterTopology | null}} options
   *   `topology` is the cluster map of a cluster client, null for a client of one server
   */
  constructor(redis, { timeoutMs, maxUsers, topology }) {
    this.redis = redis;
    this.timeoutMs = timeoutMs;
    this.maxUsers = maxUsers;
    this.topology = topology;
  }

  /**
   * Joins and reads the room in one transaction. `socket` is node-qualified (`<node>/<socket id>`);
   * rejects with a {@link NoLeaseError} when that node holds no live lease.
   * @returns {Promise<{users: string[], count: number, truncated: boolean}>}
   */
  async join(roomId, userId, socket) {
    const [, users, count] = await this.#transaction(roomId, [
      ['PRESENCE.JOIN', roomId, userId, socket],
      ['PRESENCE.LIST', roomId, 'LIMIT', String(this.maxUsers)],
      ['PRESENCE.COUNT', roomId],
    ]);
    return snapshot(users, count);
  }

  /**
   * Writes or renews a lease for `ms` milliseconds; `ms` 0 releases it. `key` is the node id,
   * on a cluster with a hash tag in front (`{<tag>}<node>`) that places it on a master.
   * @param {string} key
   * @param {number} ms
   * @returns {Promise<boolean>} whether the node held a live lease before (on that shard)
   */
  async lease(key, ms) {
    return Number(await this.#command(key, ['PRESENCE.LEASE', key, String(ms)])) === 1;
  }

  /**
   * Reads the first `maxUsers` users and the exact live count of a room, consistently.
   * @returns {Promise<{users: string[], count: number, truncated: boolean}>}
   */
  async readRoom(roomId) {
    const [users, count] = await this.#transaction(roomId, [
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
    return Number(await this.#command(roomId, ['PRESENCE.BEAT', roomId, userId, socket])) === 1;
  }

  /**
   * A clean leave.
   * @returns {Promise<boolean>} true if a presence was removed
   */
  async leave(roomId, userId, socket) {
    return Number(await this.#command(roomId, ['PRESENCE.LEAVE', roomId, userId, socket])) === 1;
  }

  /**
   * Every live (user, socket) pair of a room.
   * @returns {Promise<Array<[string, string]>>}
   */
  async listWithSockets(roomId) {
    const flat = await this.#command(roomId, ['PRESENCE.LIST', roomId, 'WITHSOCKETS']);
    const pairs = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), String(flat[i + 1])]);
    return pairs;
  }

  /** Throws unless the connection that serves `key` is up. */
  #ensureReady(key) {
    if (!this.topology) {
      if (!this.redis.isReady) throw new PresenceError(ErrorCode.UNAVAILABLE, 'Redis is not connected');
      return;
    }
    if (!this.redis.isOpen) throw new PresenceError(ErrorCode.UNAVAILABLE, 'the Redis Cluster client is closed');
    if (!this.topology.reachable(keySlot(key))) {
      throw new ShardUnreachableError(
        `the master of slot ${keySlot(key)} (${this.topology.masterOf(keySlot(key))?.address}) is not connected`,
      );
    }
  }

  /**
   * Runs `attempt(timeoutMs)` until it succeeds, fails for good, or the deadline passes
   * (see the class's doc for what is tried again).
   * @template T
   * @param {string} key the key the command routes by
   * @param {(timeoutMs: number) => Promise<T>} attempt
   * @returns {Promise<T>}
   */
  async #withRetries(key, attempt) {
    const deadline = performance.now() + this.timeoutMs;
    for (let retry = 0; ; retry += 1) {
      let err;
      try {
        this.#ensureReady(key);
        return await attempt(Math.max(1, Math.round(deadline - performance.now())));
      } catch (caught) {
        err = caught;
      }
      const pauseMs = this.#retryPause(err, retry);
      if (pauseMs === null || performance.now() + pauseMs >= deadline) throw toPresenceError(firstReplyError(err));
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** How long to wait before trying a failed command again, or null when it is not tried again. */
  #retryPause(err, retry) {
    const pauseMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** retry);
    const code = replyCode(firstReplyError(err));
    if (code === 'TRYAGAIN') return pauseMs;
    if (!this.topology || err instanceof NoLeaseError) return null;
    if (code === 'ASK') return pauseMs;
    if (code === 'MOVED') {
      this.topology.refresh();
      return 0;
    }
    if (code === null || code === 'CLUSTERDOWN') {
      this.topology.refresh();
      return pauseMs;
    }
    return null;
  }

  #command(key, args) {
    return this.#withRetries(key, (timeout) =>
      this.topology ? this.redis.sendCommand(key, false, args, { timeout }) : this.redis.sendCommand(args, { timeout }),
    );
  }

  #transaction(key, commands) {
    return this.#withRetries(key, async (timeoutMs) => {
      const multi = this.topology ? this.redis.multi(key) : this.redis.multi();
      for (const args of commands) {
        if (this.topology) multi.addCommand(key, false, args);
        else multi.addCommand(args);
      }
      let timer;
      const deadlinePromise = new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new PresenceError(ErrorCode.UNAVAILABLE, `no reply from Redis within ${this.timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([multi.exec(), deadlinePromise]);
      } catch (err) {
        const reply = firstReplyError(err);
        if (reply instanceof Error && reply.message.startsWith('NOLEASE ')) throw new NoLeaseError(reply);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    });
  }
}

function snapshot(users, count) {
  const list = users.map(String);
  const total = Number(count);
  return { users: list, count: total, truncated: total > list.length };
}

module.exports = { PresenceCommands, NoLeaseError };
