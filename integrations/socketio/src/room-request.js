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
  checkRoomId(roomId);
  const data = Object.hasOwn(payload, 'data') ? /** @type {Record<string, unknown>} */ (payload).data : undefined;
  return { roomId, data };
}

/**
 * Refuses a room id that is not valid.
 * @param {unknown} roomId
 * @returns {asserts roomId is string}
 * @throws {PresenceError} `invalid-room`
 */
function checkRoomId(roomId) {
  if (!isValidId(roomId)) throw new PresenceError(ErrorCode.INVALID_ROOM, 'a room id is 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~');
}

exports.parseRoomRequest = parseRoomRequest;
exports.checkRoomId = checkRoomId;
