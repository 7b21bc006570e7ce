'use strict';

const { isValidId } = require('./ids');

/** The event names the module publishes. */
const EVENT_TYPES = new Set(['join', 'leave', 'force-leave', 'reset']);

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
 * Returns `{type: 'reset', reason}` for a reset, `{type, room, user, socket, count, reason}`
 * for `join`, `leave` and `force-leave` (`reason` is undefined for `join`), or `null` when the
 * channel or the payload is not a presence event this integration understands.
 * @param {string} channel e.g. `__presence@0__:force-leave`
 * @param {string} message the JSON payload
 * @returns {null | {type: string, reason?: string, room?: string, user?: string, socket?: string, count?: number}}
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
  const { room, user, socket, count } = payload;
  if (!isValidId(room) || !isValidId(user) || !isValidId(socket)) return null;
  if (!Number.isInteger(count) || count < 0) return null;
  if (type !== 'join' && reason === undefined) return null;
  return { type, room, user, socket, count, reason };
}

module.exports = { parsePresenceEvent, presenceEventPattern };
