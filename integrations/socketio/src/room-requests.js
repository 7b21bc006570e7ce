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
   * @param {import('./presence-server').ServerParts} parts
   * @param {number} timeoutMs how long a join waits for its room's subscription and for the node's lease
   */
  constructor(parts, timeoutMs) {
    this.parts = parts;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Joins through the node held now (waiting for it while its lease is being taken again).
   * When that node's lease turns out lost, by a `NOLEASE` answer or while the join was under
   * way (its presence went with the node), the join is tried again through the fresh node,
   * up to the topology's `joinAttempts`, each with the same data (decided once, by the
   * application's `presenceData`).
   * @param {SocketSession} session
   * @param {import('./presence-server').RoomRequest} request
   * @param {string} userId
   * @returns {Promise<import('./server').JoinSuccess>}
   */
  async join(session, { roomId, data: requested }, userId) {
    const { socket } = session;
    if (session.closed) throw new PresenceError(ErrorCode.NOT_PRESENT, 'socket disconnected');
    const data = await this.parts.data.decide(socket, requested, { roomId, event: 'join' });
    if (session.closed) throw new PresenceError(ErrorCode.NOT_PRESENT, 'socket disconnected');
    const underWay = this.parts.presences.startJoin(roomId);
    const attempts = this.parts.topology.joinAttempts;
    let room;
    let holder;
    try {
      await this.parts.subscriber.watch(roomId, this.timeoutMs);
      let renewed = !this.parts.topology.renewsOnNoLease;
      for (let attempt = 1; ; attempt += 1) {
        const nodeId = await this.parts.lease.ready(this.timeoutMs);
        holder = `${nodeId}/${socket.id}`;
        underWay.holder = holder;
        session.uncertain.set(roomId, holder);
        try {
          room = await this.parts.commands.join(roomId, userId, holder, data);
        } catch (err) {
          const noLease = err instanceof NoLeaseError;
          if (noLease || (err instanceof PresenceError && err.code === ErrorCode.INTERNAL)) session.uncertain.delete(roomId);
          if (!noLease || attempt === attempts) throw err;
          if (renewed) {
            this.parts.lease.lost(nodeId, 'a join was refused with NOLEASE');
          } else {
            renewed = true;
            await this.parts.lease.settle();
          }
          continue;
        }
        // From here to the membership below nothing waits, so a loss of the lease cannot slip in between.
        if (this.parts.lease.nodeId === nodeId) break;
        if (attempt === attempts) throw new PresenceError(ErrorCode.UNAVAILABLE, `the lease of node ${nodeId} was lost during the join`);
      }
    } catch (err) {
      this.parts.presences.finishJoin(roomId, underWay);
      this.parts.presences.unwatchIfUnused(roomId);
      throw err;
    }
    this.parts.presences.finishJoin(roomId, underWay);
    session.uncertain.delete(roomId);
    const membership = session.memberships.get(roomId) ?? { roomId, userId, holder, confirmedSeq: 0 };
    membership.holder = holder;
    membership.confirmedSeq = ++this.parts.presences.seq;
    session.memberships.set(roomId, membership);
    session.forceLeft.delete(roomId);
    if (!session.closed) {
      socket.join(presenceChannel(roomId));
      if (underWay.missed) this.parts.publisher.schedule(roomId);
    } else {
      this.parts.presences.unwatchIfUnused(roomId);
    }
    return { ok: true, roomId, users: room.users, members: room.members, count: room.count, truncated: room.truncated };
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
    this.parts.presences.unwatchIfUnused(roomId);
    await this.parts.commands.leave(roomId, userId, holder);
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
    const membership = this.#membership(session, roomId);
    if (await this.parts.commands.beat(roomId, userId, membership.holder)) return { ok: true };
    return this.#notPresent(session, membership);
  }

  /**
   * Replaces the data of the socket's presence with what the application's `presenceData`
   * decides from the data requested. Other sockets (and this one) see it in the room's next
   * coalesced `room:participants`.
   * @param {SocketSession} session
   * @param {import('./presence-server').RoomRequest} request
   * @param {string} userId
   * @returns {Promise<import('./server').UpdateSuccess>}
   */
  async update(session, { roomId, data: requested }, userId) {
    let membership = this.#membership(session, roomId);
    const data = await this.parts.data.decide(session.socket, requested, { roomId, event: 'update' });
    if (data === null) throw new PresenceError(ErrorCode.INVALID_DATA, 'presenceData decided that the update stores nothing');
    // The presence may have ended while the application decided.
    membership = this.#membership(session, roomId);
    if (await this.parts.commands.update(roomId, userId, membership.holder, data)) return { ok: true, data: JSON.parse(data) };
    return this.#notPresent(session, membership);
  }

  /**
   * The socket's membership of `roomId`; without one, the socket gets its `room:force-leave`
   * (once per join) and the request fails with `not-present`.
   * @param {SocketSession} session
   * @param {string} roomId
   * @returns {import('./socket-session').Membership}
   */
  #membership(session, roomId) {
    const membership = session.memberships.get(roomId);
    if (membership) return membership;
    if (!session.forceLeft.has(roomId)) this.parts.presences.sendForceLeave(session, roomId, 'not-present');
    throw new PresenceError(ErrorCode.NOT_PRESENT);
  }

  /**
   * Redis answered that the socket holds no presence in the membership's room (a BEAT or an
   * UPDATE answered 0): the socket is force-left and the request fails with `not-present`.
   * @param {SocketSession} session
   * @param {import('./socket-session').Membership} membership
   * @returns {Promise<never>}
   */
  async #notPresent(session, membership) {
    // If the node's lease ended, that is why: the loss is handled first, with its own reason.
    await this.parts.lease.settle();
    this.parts.presences.forceLeave(session, membership, 'not-present');
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
        this.parts.presences.unwatchIfUnused(roomId);
        return this.parts.commands.leave(roomId, userId, holder);
      }),
    );
    const reasons = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    if (reasons.length > 0) {
      this.parts.logger.warn(
        `presence: ${reasons.length} leave(s) of socket ${session.socket.id} failed (the TTL rule will remove them): ${errorMessage(reasons[0])}`,
      );
    }
  }
}

exports.RoomRequests = RoomRequests;
