'use strict';

/** What this server knows about one of its connected sockets. */
class SocketSession {
  /** @type {Map<string, Membership>} rooms this socket joined and still holds, by room id */
  memberships = new Map();
  /** @type {Map<string, string>} rooms whose JOIN or LEAVE failed without a reply, Redis may hold a presence there: roomId → holder */
  uncertain = new Map();
  /** @type {Set<string>} rooms that got their one `room:force-leave` since this socket's last join of them */
  forceLeft = new Set();
  closed = false;
  /** @type {Promise<unknown>} settles once every task queued so far has settled; never rejects */
  queueDrainedPromise = Promise.resolve();

  /**
   * @param {import('socket.io').Socket} socket
   * @param {Promise<string | null>} userIdPromise the handshake's user id, null when not authenticated
   */
  constructor(socket, userIdPromise) {
    this.socket = socket;
    this.userIdPromise = userIdPromise;
  }

  /**
   * Runs `task` after every task queued before it, so that the joins, leaves, heartbeats and
   * the disconnect of one socket never interleave.
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  run(task) {
    const resultPromise = this.queueDrainedPromise.then(task);
    this.queueDrainedPromise = resultPromise.catch(() => {});
    return resultPromise;
  }
}

/**
 * A room a socket joined and still holds: `holder` is the node-qualified socket its presence
 * was written with, `confirmedSeq` orders the joins Redis confirmed (see `PresenceServer#seq`).
 * @typedef {{roomId: string, userId: string, holder: string, confirmedSeq: number}} Membership
 */

exports.SocketSession = SocketSession;
