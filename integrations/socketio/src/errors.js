'use strict';

/**
 * The machine-readable codes carried by `{ok: false, error}` acknowledgements.
 * The client helpers add `timeout` when no acknowledgement arrives in time.
 */
const ErrorCode = Object.freeze({
  INVALID_PAYLOAD: 'invalid-payload',
  INVALID_ROOM: 'invalid-room',
  INVALID_DATA: 'invalid-data',
  DATA_TOO_LARGE: 'data-too-large',
  UNAUTHORIZED: 'unauthorized',
  NOT_PRESENT: 'not-present',
  UNAVAILABLE: 'unavailable',
  SHUTTING_DOWN: 'shutting-down',
  INTERNAL: 'internal',
  TIMEOUT: 'timeout',
});

/** An operation that failed with one of the {@link ErrorCode} codes. */
class PresenceError extends Error {
  /**
   * @param {import('./errors').ErrorCode} code one of {@link ErrorCode}
   * @param {string} [message]
   * @param {unknown} [cause]
   */
  constructor(code, message, cause) {
    super(message ?? code, cause === undefined ? undefined : { cause });
    /** @type {'PresenceError'} */
    this.name = 'PresenceError';
    this.code = code;
  }
}

/** @type {typeof import('./errors')} */
module.exports = { ErrorCode, PresenceError };
