'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { isValidId } = require('./ids');

/**
 * Validates the arguments of a `room:*` event (the acknowledgement already removed): exactly
 * one plain object whose `roomId` is a valid id. Its `data` is returned as it came (undefined
 * when absent), for the caller to check; other fields are ignored, a `userId` among them: the
 * user always comes from the handshake.
 * @param {unknown[]} args
 * @returns {{roomId: string, data: unknown}}
 * @throws {PresenceError} `invalid-payload` or `invalid-room`
 */
function parseRoomRequest(args) {
  const [payload] = args;
  if (args.length !== 1 || payload === null || typeof payload !== 'object' || Object.getPrototypeOf(payload) !== Object.prototype) {
    throw new PresenceError(ErrorCode.INVALID_PAYLOAD, 'expected one object {roomId}');
  }
  const { roomId } = /** @type {Record<string, unknown>} */ (payload);
  if (!isValidId(roomId)) {
    throw new PresenceError(ErrorCode.INVALID_ROOM, 'roomId must be 1-128 characters of A-Z a-z 0-9 - _ . @ + = ~');
  }
  const data = Object.hasOwn(payload, 'data') ? /** @type {Record<string, unknown>} */ (payload).data : undefined;
  return { roomId, data };
}

exports.parseRoomRequest = parseRoomRequest;
