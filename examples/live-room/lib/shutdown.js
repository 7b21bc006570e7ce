'use strict';

const { logError, logInfo } = require('./log');

/** How many distinct unhandled rejections are remembered so as to be logged once each. */
const MAX_REMEMBERED_REJECTIONS = 100;

/**
 * Keeps every TCP connection of an HTTP server (plain requests and upgraded WebSockets) so
 * that a shutdown can close those that do not close by themselves.
 * @param {import('node:http').Server} httpServer
 */
function trackConnections(httpServer) {
  const sockets = new Set();
  httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    get size() {
      return sockets.size;
    },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Resolves true when `promise` settles before `deadline` (a Date.now() value), false otherwise. */
function settlesBefore(promise, deadline) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  const settled = promise.then(() => true, () => true);
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

/**
 * The graceful stop, bounded by `timeoutMs` whatever the clients and Redis do: refuses joins
 * and heartbeats and leaves every presence of this server (`presence.close()`), closes the
 * Socket.IO server (clients get a clean disconnect), then closes whatever connection is still
 * open (a client whose network was cut silently never answers the close) and the Redis
 * clients.
 * @returns {Promise<number>} the exit status: 0 when every presence was left, 1 otherwise
 */
async function stopGracefully({ presence, io, connections, redisClients, timeoutMs }) {
  const deadline = Date.now() + timeoutMs;
  const left = await settlesBefore(presence.close(), deadline);
  if (!left) logError(`shutdown: the presences of this server were not all left within ${timeoutMs} ms; the TTL rule removes the rest`);
  const closed = await settlesBefore(io.close(), deadline);
  if (!closed) logInfo(`shutdown: closing ${connections.size} connection(s) that did not close within ${timeoutMs} ms`);
  connections.destroyAll();
  const quit = await settlesBefore(Promise.all(redisClients.map((client) => client.close())), deadline + 500);
  if (!quit) for (const client of redisClients) client.destroy();
  return left ? 0 : 1;
}

/**
 * Stops the process gracefully on SIGTERM and SIGINT (a second signal exits at once) and
 * after an uncaught exception (exit status 1). An unhandled promise rejection is logged once
 * per distinct message; the server keeps running.
 * @param {Parameters<typeof stopGracefully>[0]} resources
 */
function handleProcessSignals(resources) {
  let stopping = false;
  const stop = (why, status) => {
    if (stopping) {
      logInfo(`${why} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logInfo(`${why}: leaving every presence and stopping (at most ${resources.timeoutMs} ms)`);
    stopGracefully(resources).then((code) => {
      logInfo('stopped');
      process.exit(Math.max(code, status));
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('uncaughtException', (err) => {
    logError(`unexpected error: ${err.stack}`);
    stop('after the unexpected error above', 1);
  });
  const rejections = new Set();
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? reason.stack : String(reason);
    if (rejections.has(text)) return;
    if (rejections.size >= MAX_REMEMBERED_REJECTIONS) rejections.clear();
    rejections.add(text);
    logError(`a promise was rejected without a handler (the server keeps running): ${text}`);
  });
}

module.exports = { trackConnections, stopGracefully, handleProcessSignals };
