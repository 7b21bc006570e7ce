'use strict';

/**
 * The Socket.IO room that holds this server's sockets present in a presence room. Handy for
 * an application that wants to broadcast its own events (chat, …) to the same audience.
 * @template {string} RoomId
 * @param {RoomId} roomId
 * @returns {`presence:${RoomId}`}
 */
function presenceChannel(roomId) {
  return `presence:${roomId}`;
}

exports.presenceChannel = presenceChannel;
