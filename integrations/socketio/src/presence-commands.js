'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { Backoff, sleep } = require('./retry');
const { decodeData } = require('./presence-data');
const { ModuleCalls } = require('./engines/module');

/**
 * Tells whether `err` is an error reply of the Redis server (as opposed to a connection
 * problem). node-redis marks those with the `ErrorReply` class; its module may be a different
 * copy from the one this package would load, so the class is recognised by name.
 * @param {unknown} err
 * @returns {err is Error}
 */
function isErrorReply(err) {
  if (!(err instanceof Error)) return false;
  for (let proto = Object.getPrototypeOf(err); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor && proto.constructor.name === 'ErrorReply') return true;
  }
  return false;
}

/**
 * The refusal of a script engine call that named the shard of a master that no longer owns the
 * room (the cluster map changed since the call was written): written again once the map is
 * read again.
 */
const NOT_LOCAL_REPLY = /Script attempted to access a non local key/;

/** Error replies that say the command could not run now, not that it was wrong. */
const NOT_NOW_REPLY = new RegExp(`^(TRYAGAIN|ASK|MOVED|CLUSTERDOWN) |${NOT_LOCAL_REPLY.source}`);

/** The module's refusals of a presence's data (SPEC §12), and their codes. */
const DATA_REPLIES = [
  { pattern: /^ERR data too large/, code: ErrorCode.DATA_TOO_LARGE },
  { pattern: /^ERR data must be one JSON value/, code: ErrorCode.INVALID_DATA },
];

/**
 * Converts any failure of a Redis call into a {@link PresenceError}: `data-too-large` and
 * `invalid-data` for the module's refusals of data, `internal` for another error reply of the
 * server, `unavailable` for everything else (offline, timeout, closed, a room still moving
 * between shards or a cluster down when the deadline came).
 * @param {unknown} err
 * @returns {PresenceError}
 */
function toPresenceError(err) {
  if (err instanceof PresenceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (!isErrorReply(err) || NOT_NOW_REPLY.test(message)) return new PresenceError(ErrorCode.UNAVAILABLE, message, err);
  const refusal = DATA_REPLIES.find(({ pattern }) => pattern.test(message));
  return new PresenceError(refusal ? refusal.code : ErrorCode.INTERNAL, message, err);
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
  }
}

/**
 * The first error reply of the commands of a transaction (`multi.exec()` rejects with all of
 * their replies when some failed), else the error itself.
 * @param {unknown} err
 * @returns {unknown}
 */
function firstReplyError(err) {
  const replies = err instanceof Error && 'replies' in err && Array.isArray(err.replies) ? err.replies : [];
  return replies.find((reply) => reply instanceof Error) ?? err;
}

/**
 * The code that starts an error reply (`TRYAGAIN`, `MOVED`, …), or null for another failure.
 * @param {unknown} err
 * @returns {string | null}
 */
function replyCode(err) {
  if (!isErrorReply(err)) return null;
  return /^[A-Z]+/.exec(err.message)?.[0] ?? null;
}

/** How many times one call loads the script library again before it fails. */
const MAX_RELOADS = 3;

/**
 * The pauses between the attempts of a command: from 50 ms (a slot migration, `TRYAGAIN`),
 * doubled each time, up to 400 ms.
 */
const RETRY = new Backoff(50, 400);

/**
 * The module's commands, issued through the topology's client (one server's or a cluster's)
 * with a deadline each. Every method rejects with a {@link PresenceError}.
 *
 * Each command is routed by its key (the room; for a lease, the lease key). A command is tried
 * again until its deadline, with a pause that grows from 50 to 400 ms, when the room is moving
 * between shards (`TRYAGAIN`), and on a cluster in the cases its topology names (see
 * `ClusterTopology#retryAfter`).
 */
class PresenceCommands {
  /**
   * @param {import('./topology').Topology} topology
   * @param {{timeoutMs: number, maxUsers: number}} options
   */
  constructor(topology, { timeoutMs, maxUsers }) {
    this.timeoutMs = timeoutMs;
    this.maxUsers = maxUsers;
    this.topology = topology;
    /**
     * How the calls are written: the module's commands until the server's engine is chosen
     * (`PresenceServer#start`).
     * @type {import('./engines/module').EngineCalls}
     */
    this.engine = new ModuleCalls();
  }

  /**
   * Sends one command to the server of `key`, once, within the deadline (what the engine's
   * choice and loading use). Unlike the calls below it does not require the connection to be
   * ready: at start, the application's client may still be finishing its handshake (node-redis
   * holds the command until it is).
   * @param {string} key
   * @param {string[]} args
   * @returns {Promise<unknown>}
   */
  sendOnce(key, args) {
    return this.topology.send(key, args, this.timeoutMs);
  }

  /**
   * Joins with `data` (JSON, or null for none) and reads the room in one transaction. `socket`
   * is node-qualified (`<node>/<socket id>`); rejects with a {@link NoLeaseError} when that
   * node holds no live lease.
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string | null} data
   * @returns {Promise<RoomState>}
   */
  async join(roomId, userId, socket, data) {
    const [, list, count] = await this.#transaction(roomId, () => [
      this.engine.join(roomId, userId, socket, data),
      this.#listPage(roomId),
      this.engine.count(roomId),
    ]);
    return snapshot(list, count);
  }

  /**
   * Replaces the data of the presence `socket` holds.
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @param {string} data JSON
   * @returns {Promise<boolean>} true if updated, false if this socket is not in the room
   */
  async update(roomId, userId, socket, data) {
    return Number(await this.#command(roomId, () => this.engine.update(roomId, userId, socket, data))) === 1;
  }

  /**
   * Writes or renews a lease for `ms` milliseconds; `ms` 0 releases it. `key` is the node id,
   * on a cluster with a hash tag in front (`{<tag>}<node>`) that places it on a master.
   * @param {string} key
   * @param {number} ms
   * @returns {Promise<boolean>} whether the node held a live lease before (on that shard)
   */
  async lease(key, ms) {
    return Number(await this.#command(key, () => this.engine.lease(key, ms))) === 1;
  }

  /**
   * Reads the first `maxUsers` users with their data and the exact live count of a room,
   * consistently.
   * @param {string} roomId
   * @returns {Promise<RoomState>}
   */
  async readRoom(roomId) {
    const [list, count] = await this.#transaction(roomId, () => [this.#listPage(roomId), this.engine.count(roomId)]);
    return snapshot(list, count);
  }

  /**
   * The command that lists the first `maxUsers` users of a room, each followed by its data.
   * @param {string} roomId
   * @returns {string[]}
   */
  #listPage(roomId) {
    return this.engine.list(roomId, { withData: true, limit: this.maxUsers });
  }

  /**
   * The heartbeat.
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @returns {Promise<boolean>} true if refreshed, false if this socket is not in the room
   */
  async beat(roomId, userId, socket) {
    return Number(await this.#command(roomId, () => this.engine.beat(roomId, userId, socket))) === 1;
  }

  /**
   * A clean leave.
   * @param {string} roomId
   * @param {string} userId
   * @param {string} socket
   * @returns {Promise<boolean>} true if a presence was removed
   */
  async leave(roomId, userId, socket) {
    return Number(await this.#command(roomId, () => this.engine.leave(roomId, userId, socket))) === 1;
  }

  /**
   * Every live (user, socket) pair of a room.
   * @param {string} roomId
   * @returns {Promise<Array<[string, string]>>}
   */
  async listWithSockets(roomId) {
    const flat = /** @type {unknown[]} */ (await this.#command(roomId, () => this.engine.list(roomId, { withSockets: true })));
    /** @type {Array<[string, string]>} */
    const pairs = [];
    for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([String(flat[i]), String(flat[i + 1])]);
    return pairs;
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
    let reloads = 0;
    for (let retry = 0; ; retry += 1) {
      let err;
      try {
        this.topology.ensureReady(key);
        return await attempt(Math.max(1, Math.round(deadline - performance.now())));
      } catch (caught) {
        err = caught;
      }
      if (reloads < MAX_RELOADS && this.engine.lost(firstReplyError(err)) && performance.now() < deadline) {
        // The server lost the script library (a flush, a restart, a failover): load it there
        // and try again (again if it was lost once more in between).
        reloads += 1;
        try {
          await this.engine.reload(key);
          continue;
        } catch (loadErr) {
          err = loadErr;
        }
      }
      const pauseMs = this.#retryPause(err, retry);
      if (pauseMs === null || performance.now() + pauseMs >= deadline) throw toPresenceError(firstReplyError(err));
      await sleep(pauseMs);
    }
  }

  /**
   * How long to wait before trying a failed command again, or null when it is not tried again.
   * @param {unknown} err
   * @param {number} retry
   * @returns {number | null}
   */
  #retryPause(err, retry) {
    const reply = firstReplyError(err);
    // A shard named from an old map is met as a failure without a reply: the map is read again.
    const code = reply instanceof Error && NOT_LOCAL_REPLY.test(reply.message) ? null : replyCode(reply);
    if (code === 'TRYAGAIN') return RETRY.delayMs(retry);
    if (err instanceof NoLeaseError) return null;
    const when = this.topology.retryAfter(code);
    if (when === 'never') return null;
    return when === 'now' ? 0 : RETRY.delayMs(retry);
  }

  /**
   * One command of the engine, routed by `key`, tried again as the class's doc says.
   * @param {string} key
   * @param {string[]} args
   * @returns {Promise<unknown>}
   */
  call(key, args) {
    return this.#command(key, () => args);
  }

  /**
   * @param {string} key
   * @param {() => string[]} command the command, written again for each attempt (the script
   *   engine's names the shard of the room as the cluster map has it then)
   */
  #command(key, command) {
    return this.#withRetries(key, (timeoutMs) => this.topology.send(key, command(), timeoutMs));
  }

  /**
   * @param {string} key
   * @param {() => string[][]} commands written again for each attempt, as `#command`'s
   * @returns {Promise<unknown[]>}
   */
  #transaction(key, commands) {
    return this.#withRetries(key, async (timeoutMs) => {
      const multi = this.topology.transaction(key, commands());
      /** @type {NodeJS.Timeout | undefined} */
      let timer;
      /** @type {Promise<never>} */
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

/**
 * A room's first users, with their data, and its exact live count.
 * @typedef {{users: string[], members: import('./server').Member[], count: number, truncated: boolean}} RoomState
 */

/**
 * A room as the replies of `PRESENCE.LIST … WITHDATA` (user, data, …) and `PRESENCE.COUNT`
 * give it.
 * @param {unknown} list
 * @param {unknown} count
 * @returns {RoomState}
 */
function snapshot(list, count) {
  const flat = /** @type {unknown[]} */ (list);
  /** @type {import('./server').Member[]} */
  const members = [];
  for (let i = 0; i + 1 < flat.length; i += 2) members.push({ userId: String(flat[i]), data: decodeData(flat[i + 1]) });
  const total = Number(count);
  return { users: members.map((member) => member.userId), members, count: total, truncated: total > members.length };
}

exports.PresenceCommands = PresenceCommands;
exports.NoLeaseError = NoLeaseError;
