'use strict';

const { isValidId } = require('./ids');

/**
 * Tells whether `value` is a valid socket of a presence key: an id, or a node-qualified
 * socket `<node>/<socket>` (exactly one `/`, each part an id).
 * @param {unknown} value
 * @returns {value is string}
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

exports.isValidSocket = isValidSocket;
exports.socketIdOf = socketIdOf;
exports.nodeOf = nodeOf;
