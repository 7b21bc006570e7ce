'use strict';

const { isValidId, isValidSocket } = require('./ids');

/** The event names the module publishes. */
const EVENT_TYPES = new Set(['join', 'leave', 'force-leave', 'reset', 'node-down']);

/**
 * The pub/sub pattern that matches every presence event of one database.
 * @param {number} db
 * @returns {string}
 */
function presenceEventPattern(db) {
  return `__presence@${db}__:*`;
}

/**
 * Parses one message of the module's pub/sub stream.
 *
 * Returns `{type: 'reset', reason}` for a reset, `{type: 'node-down', node, presences}` when a
 * node's lease ended, `{type, room, user, socket, count, reason}` for `join`, `leave` and
 * `force-leave` (`reason` is undefined for `join`; `socket` may be node-qualified,
 * `<node>/<socket>`), or `null` when the channel or the payload is not a presence event this
 * integration understands.
 * @param {string} channel e.g. `__presence@0__:force-leave`
 * @param {string} message the JSON payload
 * @returns {null | {type: string, reason?: string, room?: string, user?: string, socket?: string, count?: number, node?: string, presences?: number}}
 */
function parsePresenceEvent(channel, message) {
  const match = /^__presence@\d+__:(.+)$/.exec(channel);
  if (!match || !EVENT_TYPES.has(match[1])) return null;
  const type = match[1];
  let payload;
  try {
    payload = JSON.parse(message);
  } catch {
    return null;
  }
  if (payload === null || typeof payload !== 'object') return null;
  const reason = typeof payload.reason === 'string' ? payload.reason : undefined;
  if (type === 'reset') return { type, reason };
  if (type === 'node-down') {
    const { node, presences } = payload;
    if (!isValidId(node) || !Number.isInteger(presences) || presences < 0) return null;
    return { type, node, presences };
  }
  const { room, user, socket, count } = payload;
  if (!isValidId(room) || !isValidId(user) || !isValidSocket(socket)) return null;
  if (!Number.isInteger(count) || count < 0) return null;
  if (type !== 'join' && reason === undefined) return null;
  return { type, room, user, socket, count, reason };
}

module.exports = { parsePresenceEvent, presenceEventPattern };
