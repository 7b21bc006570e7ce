'use strict';

const { errorMessage } = require('./warnings');

/**
 * The log of an outage of Redis as the requests see it: one line for the first request that
 * failed with `unavailable` (the others of the same outage, every heartbeat of every socket,
 * would only repeat it) and one when Redis answers again.
 */
class OutageLog {
  /** @param {import('./server').PresenceLogger} logger */
  constructor(logger) {
    this.logger = logger;
    /** @type {number | null} when requests started failing with `unavailable`; null while Redis answers */
    this.since = null;
  }

  /**
   * A request failed because Redis could not answer.
   * @param {string} what the request, for the log
   * @param {unknown} err
   */
  failed(what, err) {
    if (this.since !== null) return;
    this.since = Date.now();
    this.logger.warn(`presence: ${what} failed: ${errorMessage(err)} (requests fail with unavailable until Redis answers again)`);
  }

  /** A request got its answer. */
  answered() {
    if (this.since === null) return;
    this.logger.warn(`presence: Redis answers again, after ${Date.now() - this.since} ms of failed requests`);
    this.since = null;
  }
}

exports.OutageLog = OutageLog;
