'use strict';

/** Longest id accepted for a room, a user or a socket, in bytes. */
const MAX_ID_BYTES = 128;

const ID_PATTERN = new RegExp(`^[A-Za-z0-9\\-_.@+=~]{1,${MAX_ID_BYTES}}$`);

/**
 * Tells whether `value` is a valid presence id (room, user or socket): a string of 1 to 128
 * bytes of `A-Z a-z 0-9 - _ . @ + = ~`. Every allowed character is one byte, so the length
 * in characters is the length in bytes.
 * @param {unknown} value
 * @returns {value is string}
 */
function isValidId(value) {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/** @type {typeof import('./ids')} */
module.exports = { isValidId, MAX_ID_BYTES };
