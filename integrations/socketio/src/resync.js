'use strict';

const { sleep } = require('./retry');
const { errorMessage } = require('./warnings');

/** The pause before the rooms are re-read again when Redis could not answer. */
const RETRY_MS = 500;

/** @typedef {'all' | Set<string>} RoomsToRead the rooms to re-read: every one, or these */

/**
 * Re-reads of rooms asked for while one is under way are merged into the next one; a re-read
 * that failed is merged into it too, and tried again after a pause, until it works or the
 * server stops.
 */
class RoomResync {
  /**
   * @param {object} options
   * @param {(rooms: RoomsToRead) => Promise<void>} options.read reads the rooms once
   * @param {() => boolean} options.stopped whether the server is closing (no more re-reads)
   * @param {import('./server').PresenceLogger} options.logger
   */
  constructor({ read, stopped, logger }) {
    this.read = read;
    this.stopped = stopped;
    this.logger = logger;
    this.running = false;
    /** @type {RoomsToRead | null} the rooms to re-read next, null for none */
    this.pending = null;
  }

  /**
   * Re-reads `rooms` (every room when undefined), now or after the re-read under way.
   * @param {Iterable<string>} [rooms]
   * @returns {Promise<void>} settles once no re-read is left, or at once when one is under way
   */
  async request(rooms) {
    this.#merge(rooms ?? 'all');
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending && !this.stopped()) {
        const which = this.pending;
        this.pending = null;
        try {
          await this.read(which);
        } catch (err) {
          this.logger.warn(`presence: cannot re-read rooms, retrying: ${errorMessage(err)}`);
          await sleep(RETRY_MS);
          this.#merge(which);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** @param {RoomsToRead | Iterable<string>} rooms */
  #merge(rooms) {
    if (rooms === 'all' || this.pending === 'all') this.pending = 'all';
    else this.pending = new Set([...(this.pending ?? []), ...rooms]);
  }
}

exports.RoomResync = RoomResync;
