'use strict';

const { io } = require('socket.io-client');
const { createPresenceClient } = require('../../src/client');
const { waitFor } = require('./wait');

/**
 * A socket.io-client socket with the presence client helpers, recording every
 * `room:participants` and `room:force-leave` it receives (with the time of arrival).
 */
class TestClient {
  /**
   * @param {string} url
   * @param {object} options
   * @param {object} options.auth the handshake's auth object
   * @param {number} [options.heartbeatIntervalMs=500]
   * @param {number} [options.heartbeatJitterMs=100]
   * @param {object} [options.socketOptions] more socket.io-client options
   */
  constructor(url, { auth, heartbeatIntervalMs = 500, heartbeatJitterMs = 100, socketOptions = {} }) {
    this.participants = [];
    this.forceLeaves = [];
    this.socket = io(url, {
      auth,
      transports: ['websocket'],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      forceNew: true,
      ...socketOptions,
    });
    this.presence = createPresenceClient(this.socket, {
      heartbeatIntervalMs,
      heartbeatJitterMs,
      ackTimeoutMs: 5000,
      onForceLeave: (event) => this.forceLeaves.push({ ...event, at: Date.now() }),
      onParticipants: (event) => this.participants.push({ ...event, at: Date.now() }),
    });
    this.rawForceLeaves = [];
    this.socket.on('room:force-leave', (event) => this.rawForceLeaves.push({ ...event, at: Date.now() }));
  }

  /** Resolves once connected; rejects with the server's refusal (`connect_error`). */
  connected(timeoutMs = 10000) {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not connected in time')), timeoutMs);
      this.socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.once('connect_error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /**
   * Joins through the presence client and records a successful acknowledgement like a
   * `room:participants`, since it is the first list the user sees.
   */
  async join(roomId, options) {
    const ack = await this.presence.join(roomId, options);
    if (ack.ok) {
      const { users, members, count, truncated } = ack;
      this.participants.push({ roomId, users, members, count, truncated, at: Date.now(), ack: true });
    }
    return ack;
  }

  /** The last `room:participants` (or join acknowledgement) of a room, or undefined. */
  lastParticipants(roomId) {
    for (let i = this.participants.length - 1; i >= 0; i -= 1) {
      if (this.participants[i].roomId === roomId) return this.participants[i];
    }
    return undefined;
  }

  /**
   * Waits until the last participant list of `roomId` is exactly `users` (sorted) with a count
   * equal to its length; resolves with the time it arrived.
   */
  async waitForUsers(roomId, users, timeoutMs = 10000) {
    const expected = JSON.stringify([...users].sort(byteOrder));
    const last = await waitFor(
      () => {
        const event = this.lastParticipants(roomId);
        return event && JSON.stringify(event.users) === expected && event.count === users.length ? event : null;
      },
      { timeoutMs, message: `participants of ${roomId} to be ${expected}` },
    );
    return last.at;
  }

  /**
   * Waits until no `room:participants` has arrived for `quietMs`: the sends under way are in.
   * A condition with a generous deadline, not a fixed pause.
   */
  waitForQuiet(quietMs = 500, timeoutMs = 30000) {
    return waitFor(
      () => {
        const last = this.participants.filter((event) => !event.ack).at(-1);
        return !last || Date.now() - last.at >= quietMs;
      },
      { timeoutMs, message: `no room:participants for ${quietMs} ms` },
    );
  }

  /** Waits for a `room:force-leave` of `roomId`; resolves with it. */
  waitForForceLeave(roomId, timeoutMs = 10000) {
    return waitFor(() => this.forceLeaves.find((event) => event.roomId === roomId), {
      timeoutMs,
      message: `room:force-leave of ${roomId}`,
    });
  }

  /** Closes the socket without leaving (as a closed tab does). */
  close() {
    this.presence.close();
    this.socket.close();
  }
}

/** Compares two strings by their bytes, the module's order of users. */
function byteOrder(a, b) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

module.exports = { TestClient };
