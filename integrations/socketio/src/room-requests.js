'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { NoLeaseError } = require('./presence-commands');
const { presenceChannel } = require('./presence-channel');
const { errorMessage } = require('./warnings');

/**
 * @typedef {import('./socket-session').SocketSession} SocketSession
 */

/**
 * The `room:*` requests of one socket, once checked and queued on its session (see
 * `PresenceServer`): join, leave, heartbeat, and the leave of every room on disconnect and
 * shutdown. Each resolves its acknowledgement or rejects with a `PresenceError`.
 */
class RoomRequests {
  /**
   * @param {object} options
   * @param {import('./local-presences').LocalPresences} options.presences
   * @param {import('./presence-commands').PresenceCommands} options.commands
   * @param {import('./node-lease').NodeLease} options.lease
   * @param {import('./topology').Topology} options.topology
   * @param {import('./topology').Subscriber} options.subscriber
   * @param {import('./participants-publisher').ParticipantsPublisher} options.publisher
   * @param {number} options.timeoutMs how long a join waits for its room's subscription and for the node's lease
   * @param {import('./server').PresenceLogger} options.logger
   */
  constructor({ presences, commands, lease, topology, subscriber, publisher, timeoutMs, logger }) {
    this.presences = presences;
    this.commands = commands;
    this.lease = lease;
    this.topology = topology;
    this.subscriber = subscriber;
    this.publisher = publisher;
    this.timeoutMs = timeoutMs;
    this.logger = logger;
  }

  /**
   * Joins through the node held now (waiting for it while its lease is being taken again).
   * When that node's lease turns out lost, by a `NOLEASE` answer or while the join was under
   * way (its presence went with the node), the join is tried again through the fresh node,
   * up to the topology's `joinAttempts`.
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<import('./server').JoinSuccess>}
   */
  async join(session, roomId, userId) {
    const { socket } = session;
    if (session.closed) throw new PresenceError(ErrorCode.NOT_PRESENT, 'socket disconnected');
    const underWay = this.presences.startJoin(roomId);
    const attempts = this.topology.joinAttempts;
    let room;
    let holder;
    try {
      await this.subscriber.watch(roomId, this.timeoutMs);
      let renewed = !this.topology.renewsOnNoLease;
      for (let attempt = 1; ; attempt += 1) {
        const nodeId = await this.lease.ready(this.timeoutMs);
        holder = `${nodeId}/${socket.id}`;
        underWay.holder = holder;
        session.uncertain.set(roomId, holder);
        try {
          room = await this.commands.join(roomId, userId, holder);
        } catch (err) {
          const noLease = err instanceof NoLeaseError;
          if (noLease || (err instanceof PresenceError && err.code === ErrorCode.INTERNAL)) session.uncertain.delete(roomId);
          if (!noLease || attempt === attempts) throw err;
          if (renewed) {
            this.lease.lost(nodeId, 'a join was refused with NOLEASE');
          } else {
            renewed = true;
            await this.lease.settle();
          }
          continue;
        }
        // From here to the membership below nothing waits, so a loss of the lease cannot slip in between.
        if (this.lease.nodeId === nodeId) break;
        if (attempt === attempts) throw new PresenceError(ErrorCode.UNAVAILABLE, `the lease of node ${nodeId} was lost during the join`);
      }
    } catch (err) {
      this.presences.finishJoin(roomId, underWay);
      this.presences.unwatchIfUnused(roomId);
      throw err;
    }
    this.presences.finishJoin(roomId, underWay);
    session.uncertain.delete(roomId);
    const membership = session.memberships.get(roomId) ?? { roomId, userId, holder, confirmedSeq: 0 };
    membership.holder = holder;
    membership.confirmedSeq = ++this.presences.seq;
    session.memberships.set(roomId, membership);
    session.forceLeft.delete(roomId);
    if (!session.closed) {
      socket.join(presenceChannel(roomId));
      if (underWay.missed) this.publisher.schedule(roomId);
    } else {
      this.presences.unwatchIfUnused(roomId);
    }
    return { ok: true, roomId, users: room.users, count: room.count, truncated: room.truncated };
  }

  /**
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<{ok: true}>}
   */
  async leave(session, roomId, userId) {
    const holder = session.memberships.get(roomId)?.holder ?? session.uncertain.get(roomId);
    if (holder === undefined) throw new PresenceError(ErrorCode.NOT_PRESENT);
    session.memberships.delete(roomId);
    session.uncertain.set(roomId, holder);
    session.socket.leave(presenceChannel(roomId));
    this.presences.unwatchIfUnused(roomId);
    await this.commands.leave(roomId, userId, holder);
    session.uncertain.delete(roomId);
    return { ok: true };
  }

  /**
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<{ok: true}>}
   */
  async heartbeat(session, roomId, userId) {
    const membership = session.memberships.get(roomId);
    if (!membership) {
      if (!session.forceLeft.has(roomId)) this.presences.sendForceLeave(session, roomId, 'not-present');
      throw new PresenceError(ErrorCode.NOT_PRESENT);
    }
    if (await this.commands.beat(roomId, userId, membership.holder)) return { ok: true };
    // If the node's lease ended, that is why: the loss is handled first, with its own reason.
    await this.lease.settle();
    this.presences.forceLeave(session, membership, 'not-present');
    throw new PresenceError(ErrorCode.NOT_PRESENT);
  }

  /**
   * Leaves every presence the socket may hold (disconnect and shutdown).
   * @param {SocketSession} session
   */
  async leaveAll(session) {
    const rooms = new Map(session.uncertain);
    for (const membership of session.memberships.values()) rooms.set(membership.roomId, membership.holder);
    const userId = await session.userIdPromise;
    session.memberships.clear();
    session.uncertain.clear();
    if (userId === null) return;
    const results = await Promise.allSettled(
      [...rooms].map(([roomId, holder]) => {
        session.socket.leave(presenceChannel(roomId));
        this.presences.unwatchIfUnused(roomId);
        return this.commands.leave(roomId, userId, holder);
      }),
    );
    const reasons = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    if (reasons.length > 0) {
      this.logger.warn(
        `presence: ${reasons.length} leave(s) of socket ${session.socket.id} failed (the TTL rule will remove them): ${errorMessage(reasons[0])}`,
      );
    }
  }
}

exports.RoomRequests = RoomRequests;
