'use strict';

const { errorMessage } = require('./warnings');

/**
 * Sends `room:participants` to this server's own sockets of a room, coalesced per room: the
 * first change is sent at once, and further changes within `intervalMs` of a send are folded
 * into one send at the end of that interval. Each send reads the room afresh, so `count` is
 * exact even when `users` is cut to `maxUsers`, and `members` carries each user's latest data:
 * a storm of joins or data updates costs one read and one send per room per interval.
 */
class ParticipantsPublisher {
  /**
   * @param {object} options
   * @param {import('socket.io').Namespace} options.nsp
   * @param {import('./presence-commands').PresenceCommands} options.commands
   * @param {(roomId: string) => string} options.channelOf the Socket.IO room of a presence room
   * @param {number} options.intervalMs
   * @param {import('./server').PresenceLogger} options.logger
   */
  constructor({ nsp, commands, channelOf, intervalMs, logger }) {
    this.nsp = nsp;
    this.commands = commands;
    this.channelOf = channelOf;
    this.intervalMs = intervalMs;
    this.logger = logger;
    /** @type {Map<string, RoomState>} */
    this.rooms = new Map();
    this.closed = false;
  }

  /**
   * Notes that `roomId` changed. Nothing is sent when no local socket is in the room.
   * @param {string} roomId
   */
  schedule(roomId) {
    if (this.closed || !this.#hasLocalSockets(roomId)) return;
    let state = this.rooms.get(roomId);
    if (!state) {
      state = { pending: false, timer: undefined };
      this.rooms.set(roomId, state);
    }
    state.pending = true;
    if (!state.timer) state.timer = setTimeout(() => this.#flush(roomId, state), 0);
  }

  /** Cancels every pending send. */
  close() {
    this.closed = true;
    for (const state of this.rooms.values()) clearTimeout(state.timer);
    this.rooms.clear();
  }

  /**
   * @param {string} roomId
   * @param {RoomState} state
   */
  async #flush(roomId, state) {
    if (!state.pending || this.closed) {
      this.rooms.delete(roomId);
      return;
    }
    state.pending = false;
    try {
      const { users, members, count, truncated } = await this.commands.readRoom(roomId);
      if (!this.closed) {
        this.nsp.local.to(this.channelOf(roomId)).emit('room:participants', { roomId, users, members, count, truncated });
      }
    } catch (err) {
      this.logger.warn(`presence: cannot read room ${roomId}: ${errorMessage(err)}`);
    }
    if (!this.closed) state.timer = setTimeout(() => this.#flush(roomId, state), this.intervalMs);
  }

  /** @param {string} roomId */
  #hasLocalSockets(roomId) {
    const sockets = this.nsp.adapter.rooms.get(this.channelOf(roomId));
    return sockets !== undefined && sockets.size > 0;
  }
}

/** @typedef {{pending: boolean, timer: NodeJS.Timeout | undefined}} RoomState */

exports.ParticipantsPublisher = ParticipantsPublisher;
