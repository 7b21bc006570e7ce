'use strict';

const http = require('node:http');
const { Server } = require('socket.io');
const { createClient, createCluster } = require('redis');
const { attachPresence } = require('../../src/server');
const { engineOptions } = require('./engine');

/**
 * An in-process Socket.IO server with the presence integration attached, for the package's
 * own tests. Its user id hook trusts `auth.user` of the handshake (tests only: an application
 * derives the user from a verified token).
 * @param {string | string[]} redisUrl a server's URL, or the URLs of a cluster's nodes (then the
 *   integration gets a node-redis cluster client)
 * @param {object} [presenceOptions] more options of attachPresence (with `engine`, the test
 *   server's engine settings are not added)
 * @param {object} [ioOptions] more Socket.IO server options
 * @returns {Promise<{url: string, io: import('socket.io').Server, redis: object, presence: import('../../src/server').PresenceHandle, warnings: string[], infos: string[], close: () => Promise<void>}>}
 */
async function startSocketServer(redisUrl, presenceOptions = {}, ioOptions = {}) {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { pingInterval: 1000, pingTimeout: 1000, ...ioOptions });
  const redis = Array.isArray(redisUrl)
    ? createCluster({ rootNodes: redisUrl.map((url) => ({ url })), defaults: { socket: { reconnectStrategy: 50, connectTimeout: 1000 } } })
    : createClient({ url: redisUrl, socket: { reconnectStrategy: 50 } });
  redis.on('error', () => {});
  redis.on('node-error', () => {});
  await redis.connect();
  const warnings = [];
  const infos = [];
  let presence;
  try {
    presence = await attachPresence(io, {
      redis,
      getUserId: (socket) => socket.handshake.auth.user,
      participantsIntervalMs: 100,
      // The engine of the test server at `redisUrl`, unless the test names one.
      ...(presenceOptions.engine === undefined ? engineOptions(redisUrl) : {}),
      logger: { warn: (message) => warnings.push(message), info: (message) => infos.push(message) },
      ...presenceOptions,
    });
  } catch (err) {
    io.close();
    redis.destroy();
    throw err;
  }
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${httpServer.address().port}`;
  let closed = false;
  return {
    url,
    io,
    redis,
    presence,
    warnings,
    infos,
    async close() {
      if (closed) return;
      closed = true;
      await presence.close();
      await new Promise((resolve) => io.close(() => resolve()));
      redis.destroy();
    },
  };
}

module.exports = { startSocketServer };
