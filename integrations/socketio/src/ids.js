'use strict';

/** Longest id accepted for a room, a user or a socket, in bytes. */
const MAX_ID_BYTES = 128;

const ID_PATTERN = new RegExp(`^[A-Za-z0-9\\-_.@+=~]{1,${MAX_ID_BYTES}}$`);

/**
 * Tells whether `value` is a valid presence id (room, user or socket): a string of 1 to 128
 * bytes of `A-Z a-z 0-9 - _ . @ + = ~`. Every allowed character is one byte, so the length
 * in characters is the length in bytes.
 * @param {unknown} value
 * @returns {boolean}
 */
function isValidId(value) {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

/**
 * Tells whether `value` is a valid socket of a presence key: an id, or a node-qualified
 * socket `<node>/<socket>` (exactly one `/`, each part an id).
 * @param {unknown} value
 * @returns {boolean}
 */
function isValidSocket(value) {
  if (typeof value !== 'string') return false;
  const parts = value.split('/');
  return parts.length <= 2 && parts.every(isValidId);
}

/**
 * The socket id of a valid socket of a presence key: the part after the `/` of a
 * node-qualified one, the whole value otherwise.
 * @param {string} socket
 * @returns {string}
 */
function socketIdOf(socket) {
  return socket.slice(socket.indexOf('/') + 1);
}

/**
 * The node of a valid socket of a presence key: the part before the `/`, or null when the
 * socket is not node-qualified.
 * @param {string} socket
 * @returns {string | null}
 */
function nodeOf(socket) {
  const slash = socket.indexOf('/');
  return slash < 0 ? null : socket.slice(0, slash);
}

module.exports = { isValidId, isValidSocket, socketIdOf, nodeOf, MAX_ID_BYTES };
