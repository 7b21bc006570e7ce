/** Longest id accepted for a room, a user or a socket, in bytes. */
export declare const MAX_ID_BYTES: 128;

/**
 * Tells whether `value` is a valid presence id (room, user or socket): a string of 1 to 128
 * bytes of `A-Z a-z 0-9 - _ . @ + = ~`.
 */
export declare function isValidId(value: unknown): value is string;
