'use strict';

/**
 * Polls `check` until it returns a truthy value, and resolves with that value; rejects with
 * `message` (and the last value seen) when `timeoutMs` passes.
 * @template T
 * @param {() => T | Promise<T>} check
 * @param {{timeoutMs?: number, intervalMs?: number, message?: string}} [options]
 * @returns {Promise<T>}
 */
async function waitFor(check, { timeoutMs = 10000, intervalMs = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (last: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

module.exports = { waitFor };
