'use strict';

/**
 * The message of a thrown value: its `message` when it is an Error, else the value as text.
 * @param {unknown} err
 * @returns {string}
 */
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Warnings of a failure that repeats (a reconnecting client fails the same way at every
 * attempt): each distinct message is logged once, until {@link RepeatedWarnings#clear} says
 * the failure is over.
 */
class RepeatedWarnings {
  /** @param {import('./server').PresenceLogger} logger */
  constructor(logger) {
    this.logger = logger;
    /** @type {string | null} the message last logged */
    this.last = null;
  }

  /**
   * Logs `message` unless it is the one last logged.
   * @param {string} message
   */
  warn(message) {
    if (message === this.last) return;
    this.last = message;
    this.logger.warn(message);
  }

  /** The failure is over: its next occurrence is logged again. */
  clear() {
    this.last = null;
  }
}

exports.errorMessage = errorMessage;
exports.RepeatedWarnings = RepeatedWarnings;
