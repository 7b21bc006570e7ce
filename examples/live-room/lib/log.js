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

/**
 * Logs lines of one kind at most once per `intervalMs`, counting the ones it held back, so
 * that a flood (of malformed requests, say) cannot flood the log.
 */
class ThrottledLog {
  /** @param {number} intervalMs */
  constructor(intervalMs) {
    this.intervalMs = intervalMs;
    this.lastAt = -Infinity;
    this.held = 0;
  }

  /** @param {string} message */
  error(message) {
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) {
      this.held += 1;
      return;
    }
    const held = this.held ? ` (and ${this.held} more like it since the last such line)` : '';
    this.lastAt = now;
    this.held = 0;
    logError(message + held);
  }
}

module.exports = { logError, logInfo, OutageLog, ThrottledLog };
