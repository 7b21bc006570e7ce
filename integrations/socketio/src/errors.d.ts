/**
 * The machine-readable codes carried by `{ok: false, error}` acknowledgements, as constants.
 * The client helpers add `timeout` when no acknowledgement arrives in time.
 */
export declare const ErrorCode: {
  /** Not exactly one plain object `{roomId}` (a string, a number, an array, binary, extra arguments). */
  readonly INVALID_PAYLOAD: 'invalid-payload';
  /** `roomId` missing, not a string, or not 1–128 bytes of `A-Z a-z 0-9 - _ . @ + = ~`. */
  readonly INVALID_ROOM: 'invalid-room';
  /**
   * `data` is not one JSON value (binary, a function, `undefined` inside, a number that is not
   * finite, a key `__proto__`, `constructor` or `prototype`, nested deeper than 16 levels), or
   * `presenceData` decided that an update stores nothing.
   */
  readonly INVALID_DATA: 'invalid-data';
  /** `data` (as sent, or as `presenceData` decided) is longer than `maxDataBytes` once written as JSON. */
  readonly DATA_TOO_LARGE: 'data-too-large';
  /** The handshake gave no valid user id (`getUserId`). */
  readonly UNAUTHORIZED: 'unauthorized';
  /** This socket holds no presence in that room (never joined, left, or lost it). */
  readonly NOT_PRESENT: 'not-present';
  /** Redis is not connected or did not answer within `commandTimeoutMs`; the write may have happened. */
  readonly UNAVAILABLE: 'unavailable';
  /** The server is closing: no new joins or heartbeats. */
  readonly SHUTTING_DOWN: 'shutting-down';
  /** Redis answered with an error (a presence key holding a non-string, …). */
  readonly INTERNAL: 'internal';
  /** Client side only: no acknowledgement within `ackTimeoutMs`; the request may have been applied. */
  readonly TIMEOUT: 'timeout';
};

/** One of the {@link ErrorCode} values: `'invalid-payload' | 'invalid-room' | … | 'timeout'`. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The codes a server sends in `{ok: false, error}`: every {@link ErrorCode} but `timeout`. */
export type ServerErrorCode = Exclude<ErrorCode, 'timeout'>;

/** An operation that failed with one of the {@link ErrorCode} codes. */
export declare class PresenceError extends Error {
  /**
   * @param code one of {@link ErrorCode}
   * @param message defaults to `code`
   * @param cause the underlying error, kept as `cause`
   */
  constructor(code: ErrorCode, message?: string, cause?: unknown);
  name: 'PresenceError';
  code: ErrorCode;
}
