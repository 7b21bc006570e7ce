'use strict';

const { presenceChannel } = require('./presence-channel');

/**
 * @typedef {import('./socket-session').SocketSession} SocketSession
 * @typedef {import('./socket-session').Membership} Membership
 * @typedef {{holder: string | null, missed: boolean}} JoinUnderWay
 */

/**
 * The presences of this server's sockets as this server knows them: its sessions, the joins
 * under way, and the end of a membership (`room:force-leave`). A room's events are followed
 * while one of its sockets is in the room or a join of it is under way.
 */
class LocalPresences {
  /** @type {Map<string, SocketSession>} this server's connected sockets, by socket id */
  sessions = new Map();
  /**
   * roomId → the joins under way there. An event that arrives while a join waits for its
   * reply may be missed by that socket (not yet in the room's channel, and not in the state
   * its acknowledgement read), so the room is sent again once the join is done.
   * @type {Map<string, Set<JoinUnderWay>>}
   */
  joinsUnderWay = new Map();
  /** Counts the joins Redis confirmed: a re-read leaves alone the memberships confirmed after it began. */
  seq = 0;

  /**
   * @param {import('socket.io').Namespace} nsp
   * @param {import('./topology').Subscriber} subscriber
   */
  constructor(nsp, subscriber) {
    this.nsp = nsp;
    this.subscriber = subscriber;
  }

  /**
   * Notes a join of `roomId` under way.
   * @param {string} roomId
   * @returns {JoinUnderWay}
   */
  startJoin(roomId) {
    const underWay = { holder: null, missed: false };
    this.joinsUnderWay.set(roomId, (this.joinsUnderWay.get(roomId) ?? new Set()).add(underWay));
    return underWay;
  }

  /**
   * @param {string} roomId
   * @param {JoinUnderWay} underWay
   */
  finishJoin(roomId, underWay) {
    const joins = this.joinsUnderWay.get(roomId);
    joins?.delete(underWay);
    if (joins?.size === 0) this.joinsUnderWay.delete(roomId);
  }

  /**
   * Stops following the events of a room once none of this server's sockets is in it and no
   * join of it is under way (on a cluster, its sharded subscription ends).
   * @param {string} roomId
   */
  unwatchIfUnused(roomId) {
    if (this.joinsUnderWay.has(roomId)) return;
    const sockets = this.nsp.adapter.rooms.get(presenceChannel(roomId));
    if (sockets && sockets.size > 0) return;
    this.subscriber.unwatch(roomId);
  }

  /**
   * The rooms where a socket of this server holds (or may hold) a presence, or a join is under way.
   * @returns {Generator<string>}
   */
  *roomsHeld() {
    for (const session of this.sessions.values()) {
      yield* session.memberships.keys();
      yield* session.uncertain.keys();
    }
    yield* this.joinsUnderWay.keys();
  }

  /**
   * Ends a membership and tells the socket, unless that membership already ended.
   * @param {SocketSession} session
   * @param {Membership} membership
   * @param {string} reason
   */
  forceLeave(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    session.memberships.delete(membership.roomId);
    session.socket.leave(presenceChannel(membership.roomId));
    this.unwatchIfUnused(membership.roomId);
    this.sendForceLeave(session, membership.roomId, reason);
  }

  /**
   * Sends the socket its `room:force-leave`, once per join of the room.
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} reason
   */
  sendForceLeave(session, roomId, reason) {
    session.forceLeft.add(roomId);
    session.socket.emit('room:force-leave', { roomId, reason });
  }
}

exports.LocalPresences = LocalPresences;
