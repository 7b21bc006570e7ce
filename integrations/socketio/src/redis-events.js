'use strict';

const { socketIdOf, nodeOf } = require('./socket-ids');
const { errorMessage } = require('./warnings');

/**
 * @typedef {import('./socket-session').SocketSession} SocketSession
 * @typedef {import('./socket-session').Membership} Membership
 */

/**
 * What this server does when Redis tells of a change: the module's events (participant lists
 * sent again, losses of local sockets confirmed and force-left, re-reads after a `reset`, a
 * `node-down` of this server's node), the loss of the node's lease, and the re-read of rooms.
 */
class RedisEvents {
  /**
   * @param {import('./presence-server').ServerParts} parts
   * @param {object} options
   * @param {(rooms: string[] | undefined) => void} options.reread asks for a re-read of rooms (undefined: every room)
   * @param {() => boolean} options.closing whether the server is closing
   */
  constructor(parts, { reread, closing }) {
    this.parts = parts;
    this.reread = reread;
    this.closing = closing;
  }

  /** @param {import('./presence-events').PresenceEvent} event */
  onEvent(event) {
    if (event.type === 'reset') {
      this.reread(event.room === undefined ? undefined : [event.room]);
      return;
    }
    if (event.type === 'node-down') {
      // Another node's presences each have their own force-leave; this node's means a lost
      // lease when it took presences with it (a shard of a cluster where this server held
      // none may announce the end of an old lease key).
      if (!this.closing() && event.presences > 0) this.parts.lease.lost(event.node, 'Redis announced node-down for it');
      return;
    }
    this.parts.publisher.schedule(event.room);
    for (const join of this.parts.presences.joinsUnderWay.get(event.room) ?? []) {
      if (event.type !== 'join' || event.socket !== join.holder) join.missed = true;
    }
    if (event.type === 'join' || event.type === 'update') return;
    const session = this.parts.presences.sessions.get(socketIdOf(event.socket));
    const membership = session && session.memberships.get(event.room);
    if (!session || !membership || membership.userId !== event.user || membership.holder !== event.socket) return;
    const reason = event.type === 'leave' ? 'deleted' : event.reason;
    session
      .run(() => this.#confirmLoss(session, membership, reason))
      .catch((err) => this.parts.logger.warn(`presence: check of ${event.socket} in ${event.room} failed: ${errorMessage(err)}`));
  }

  /**
   * The node's lease was found lost: every presence written through the old node is gone (the
   * lease released the old node, so that none comes back). Its sockets are force-left, with
   * reason `node-down` when the lease expired, `reset` when Redis lost it while it was renewed
   * on time (as for any presence Redis lost), and the loss is logged in one line.
   * @param {import('./node-lease').LeaseLoss} loss
   */
  onLeaseLost({ oldNodeId, nodeId, why, expired }) {
    const reason = expired ? 'node-down' : 'reset';
    let count = 0;
    for (const session of this.parts.presences.sessions.values()) {
      for (const membership of [...session.memberships.values()]) {
        if (nodeOf(membership.holder) !== oldNodeId) continue;
        this.parts.presences.forceLeave(session, membership, reason);
        count += 1;
      }
    }
    this.parts.logger.warn(
      `presence: node lease lost: ${why}; the ${count} presence(s) of this server's sockets went with node ${oldNodeId} and were force-left (${reason}); continuing as node ${nodeId}`,
    );
  }

  /**
   * Re-reads rooms (after the pub/sub connection came back, or on a `reset` event):
   * force-leaves (reason `reset`) the sockets whose presence is gone, and sends fresh
   * participant lists. Memberships confirmed after the re-read began are left alone.
   * @param {import('./resync').RoomsToRead} which
   */
  async readRooms(which) {
    const horizon = this.parts.presences.seq;
    /** @type {Map<string, Array<{session: SocketSession, membership: Membership}>>} */
    const rooms = new Map();
    for (const session of this.parts.presences.sessions.values()) {
      for (const membership of session.memberships.values()) {
        if (membership.confirmedSeq > horizon || (which !== 'all' && !which.has(membership.roomId))) continue;
        const entries = rooms.get(membership.roomId);
        if (entries) entries.push({ session, membership });
        else rooms.set(membership.roomId, [{ session, membership }]);
      }
    }
    for (const [roomId, entries] of rooms) {
      const live = new Set((await this.parts.commands.listWithSockets(roomId)).map(([user, socket]) => `${user} ${socket}`));
      for (const { session, membership } of entries) {
        if (membership.confirmedSeq <= horizon && !live.has(`${membership.userId} ${membership.holder}`)) {
          this.parts.presences.forceLeave(session, membership, 'reset');
        }
      }
      this.parts.publisher.schedule(roomId);
    }
  }

  /**
   * An event says that a local socket lost its presence. Pub/sub and command replies travel
   * on different connections, so the event may be older than a join the socket made since:
   * the socket is force-left only if Redis confirms it is not present (a BEAT answering 0).
   * @param {SocketSession} session
   * @param {Membership} membership
   * @param {string} reason
   */
  async #confirmLoss(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    let present;
    try {
      present = await this.parts.commands.beat(membership.roomId, membership.userId, membership.holder);
    } catch (err) {
      this.parts.logger.warn(`presence: cannot check socket ${session.socket.id} in room ${membership.roomId}: ${errorMessage(err)}`);
      return;
    }
    if (!present) this.parts.presences.forceLeave(session, membership, reason);
  }
}

exports.RedisEvents = RedisEvents;
