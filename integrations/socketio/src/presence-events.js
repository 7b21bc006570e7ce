'use strict';

const { isValidId } = require('./ids');
const { isValidSocket } = require('./socket-ids');

/** @typedef {PresenceEvent['type']} EventType */

/** @type {ReadonlySet<unknown>} the event names the module publishes */
const EVENT_TYPES = new Set(['join', 'update', 'leave', 'force-leave', 'reset', 'node-down']);

/**
 * Tells whether `type` is an event name the module publishes.
 * @param {unknown} type
 * @returns {type is EventType}
 */
function isEventType(type) {
  return EVENT_TYPES.has(type);
}

/**
 * The pub/sub pattern that matches every presence event of one database on a standalone
 * server (the module publishes there on `__presence@<db>__:<event>`).
 * @param {number} db
 * @returns {string}
 */
function presenceEventPattern(db) {
  return `__presence@${db}__:*`;
}

/**
 * The sharded channel of one room's events on a cluster, `__presence@<db>__:{<room>}`: its
 * hash tag is the room, so it lives on the room's shard.
 * @param {number} db
 * @param {string} roomId
 * @returns {string}
 */
function roomEventChannel(db, roomId) {
  return `__presence@${db}__:{${roomId}}`;
}

/**
 * The channel of `node-down` events, which every node of a cluster delivers.
 * @param {number} db
 * @returns {string}
 */
function nodeDownChannel(db) {
  return `__presence@${db}__:node-down`;
}

/**
 * Parses one message of the module's pub/sub stream: an event channel `__presence@<db>__:<event>`,
 * or a room's channel `__presence@<db>__:{<room>}` whose payload names the event in its
 * `"event"` field (and must name the channel's room).
 *
 * Returns `{type: 'reset', reason, room}` for a reset (`room` only on a room's channel),
 * `{type: 'node-down', node, presences}` when a node's lease ended,
 * `{type, room, user, socket, count, reason}` for `join`, `update`, `leave` and `force-leave`
 * (`reason` is undefined for `join` and `update`; `socket` may be node-qualified,
 * `<node>/<socket>`; the data of `join` and `update` is left out: a change is sent on by
 * reading the room again), or `null` when
 * the channel or the payload is not a presence event this integration understands.
 * @param {string} channel e.g. `__presence@0__:force-leave` or `__presence@0__:{123}`
 * @param {string} message the JSON payload
 * @returns {PresenceEvent | null}
 */
function parsePresenceEvent(channel, message) {
  const match = /^__presence@\d+__:(?:\{([^{}]*)\}|(.+))$/.exec(channel);
  if (!match) return null;
  const channelRoom = match[1];
  if (channelRoom !== undefined && !isValidId(channelRoom)) return null;
  let payload;
  try {
    payload = JSON.parse(message);
  } catch {
    return null;
  }
  if (payload === null || typeof payload !== 'object') return null;
  const type = channelRoom === undefined ? match[2] : payload.event;
  if (!isEventType(type)) return null;
  if (channelRoom !== undefined && (type === 'node-down' || payload.room !== channelRoom)) return null;
  const reason = typeof payload.reason === 'string' ? payload.reason : undefined;
  if (type === 'reset') return channelRoom === undefined ? { type, reason } : { type, reason, room: channelRoom };
  if (type === 'node-down') {
    const { node, presences } = payload;
    if (!isValidId(node) || !Number.isInteger(presences) || presences < 0) return null;
    return { type, node, presences };
  }
  const { room, user, socket, count } = payload;
  if (!isValidId(room) || !isValidId(user) || !isValidSocket(socket)) return null;
  if (!Number.isInteger(count) || count < 0) return null;
  if (type === 'join') return { type, room, user, socket, count, reason: undefined };
  if (type === 'update') return { type, room, user, socket, count, reason: undefined };
  if (reason === undefined) return null;
  return { type, room, user, socket, count, reason };
}

/**
 * A listener for node-redis's `subscribe`, `pSubscribe` and `sSubscribe` that hands each
 * presence event to `onEvent` (and drops what is not one).
 * @param {(event: PresenceEvent) => void} onEvent
 * @returns {(message: string, channel: string) => void}
 */
function eventListener(onEvent) {
  return (message, channel) => {
    const event = parsePresenceEvent(channel, message);
    if (event) onEvent(event);
  };
}

/**
 * @typedef {{type: 'reset', reason: string | undefined, room?: string}} ResetEvent
 * @typedef {{type: 'node-down', node: string, presences: number}} NodeDownEvent
 * @typedef {{type: 'join', room: string, user: string, socket: string, count: number, reason: undefined}} JoinEvent
 * @typedef {{type: 'update', room: string, user: string, socket: string, count: number, reason: undefined}} UpdateEvent
 * @typedef {{type: 'leave' | 'force-leave', room: string, user: string, socket: string, count: number, reason: string}} LossEvent
 * @typedef {ResetEvent | NodeDownEvent | JoinEvent | UpdateEvent | LossEvent} PresenceEvent
 */

exports.parsePresenceEvent = parsePresenceEvent;
exports.eventListener = eventListener;
exports.presenceEventPattern = presenceEventPattern;
exports.roomEventChannel = roomEventChannel;
exports.nodeDownChannel = nodeDownChannel;
