'use strict';

/** Writes one line on stderr, prefixed with the program's name. */
function logError(message) {
  console.error(`live-room: ${message}`);
}

/** Writes one line on stdout, prefixed with the program's name. */
function logInfo(message) {
  console.log(`live-room: ${message}`);
}

/**
 * Logs a failure that may repeat (Redis down, a polling client hitting the same error) once,
 * until `recovered(topic)` says that it works again: one line per outage, not one per request.
 */
class OutageLog {
  constructor() {
    /** @type {Map<string, string>} topic → the message last logged */
    this.failing = new Map();
  }

  /**
   * @param {string} topic what failed (`redis`, `GET /api/room`, …)
   * @param {string} message
   */
  failed(topic, message) {
    if (this.failing.get(topic) === message) return;
    this.failing.set(topic, message);
    logError(`${topic}: ${message}`);
  }

  /** @param {string} topic */
  recovered(topic) {
    if (this.failing.delete(topic)) logInfo(`${topic}: working again`);
  }
}

module.exports = { logError, logInfo, OutageLog };
