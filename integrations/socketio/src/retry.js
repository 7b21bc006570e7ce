'use strict';

/**
 * Resolves after `ms` milliseconds.
 * @param {number} ms
 * @returns {Promise<void>}
 */
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The pauses between the attempts of something tried again until it works: `firstMs` before
 * the second attempt, doubled at each further one up to `maxMs` (a fixed pause when `maxMs` is
 * `firstMs`).
 */
class Backoff {
  /**
   * @param {number} firstMs
   * @param {number} [maxMs]
   */
  constructor(firstMs, maxMs = firstMs) {
    this.firstMs = firstMs;
    this.maxMs = maxMs;
  }

  /**
   * The pause after attempt `retry + 1` failed (`retry` counts from 0).
   * @param {number} retry
   * @returns {number}
   */
  delayMs(retry) {
    return Math.min(this.maxMs, this.firstMs * 2 ** retry);
  }

  /**
   * Waits the pause after attempt `retry + 1` failed.
   * @param {number} retry
   * @returns {Promise<void>}
   */
  wait(retry) {
    return sleep(this.delayMs(retry));
  }
}

exports.Backoff = Backoff;
exports.sleep = sleep;
