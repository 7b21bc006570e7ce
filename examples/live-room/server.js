'use strict';

/*
 * live-room: a demo of room presence on Socket.IO and Redis.
 *
 * Configuration (environment):
 *   PORT                       HTTP port (default 3000; 0 picks a free one)
 *   REDIS_URL                  Redis with the presence module (default redis://127.0.0.1:6379)
 *   SESSION_SECRET             HMAC key of the login tokens (random when unset: tokens then
 *                              die with the process)
 *   PING_INTERVAL_MS           Socket.IO pingInterval (default 25000)
 *   PING_TIMEOUT_MS            Socket.IO pingTimeout (default 20000)
 *   MAX_HTTP_BUFFER_SIZE       Socket.IO maxHttpBufferSize in bytes (default 1000000)
 *   HEARTBEAT_INTERVAL_MS      the page's room:heartbeat period, plus up to a fifth of it of
 *                              jitter (default 25000, so every 25-30 s)
 *   PARTICIPANTS_INTERVAL_MS   at most one room:participants per room per interval (default 250)
 *   PARTICIPANTS_LIMIT         longest participant list sent (default 200)
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');
const { attachPresence, isValidId } = require('@presence/socketio');
const { issueToken, verifyToken } = require('./auth-token');

/**
 * Reads a non-negative integer from the environment.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
function envInteger(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** The configuration, from the environment. */
function readConfig() {
  const heartbeatIntervalMs = envInteger('HEARTBEAT_INTERVAL_MS', 25000);
  return {
    port: envInteger('PORT', 3000),
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    sessionSecret: process.env.SESSION_SECRET || crypto.randomBytes(32).toString('hex'),
    pingInterval: envInteger('PING_INTERVAL_MS', 25000),
    pingTimeout: envInteger('PING_TIMEOUT_MS', 20000),
    maxHttpBufferSize: envInteger('MAX_HTTP_BUFFER_SIZE', 1e6),
    heartbeatIntervalMs,
    heartbeatJitterMs: Math.round(heartbeatIntervalMs / 5),
    participantsIntervalMs: envInteger('PARTICIPANTS_INTERVAL_MS', 250),
    participantsLimit: envInteger('PARTICIPANTS_LIMIT', 200),
  };
}

const PUBLIC_DIR = path.join(__dirname, 'public');
const STATIC_FILES = {
  '/': { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/presence-client.js': { file: require.resolve('@presence/socketio/client'), type: 'text/javascript; charset=utf-8' },
};

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/**
 * The HTTP routes: the page and its scripts, the development login and the page's settings.
 * Socket.IO serves its own client at /socket.io/socket.io.js on the same server.
 */
function createRequestHandler(config) {
  return (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: 'method-not-allowed' });
    } else if (url.pathname === '/api/token') {
      const user = url.searchParams.get('user');
      if (!isValidId(user)) sendJson(res, 400, { error: 'invalid-user' });
      else sendJson(res, 200, { token: issueToken(config.sessionSecret, user) });
    } else if (url.pathname === '/api/config') {
      sendJson(res, 200, { heartbeatIntervalMs: config.heartbeatIntervalMs, heartbeatJitterMs: config.heartbeatJitterMs });
    } else if (Object.hasOwn(STATIC_FILES, url.pathname)) {
      const { file, type } = STATIC_FILES[url.pathname];
      fs.readFile(file, (err, data) => {
        if (err) {
          sendJson(res, 500, { error: 'unreadable' });
          return;
        }
        res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
        res.end(data);
      });
    } else {
      sendJson(res, 404, { error: 'not-found' });
    }
  };
}

/** Logs a Redis client's errors, each distinct one once until the connection is ready again. */
function logErrorsOnce(client) {
  let last = null;
  client.on('error', (err) => {
    if (err.message !== last) console.error(`redis: ${err.message}`);
    last = err.message;
  });
  client.on('ready', () => {
    last = null;
  });
}

async function main() {
  const config = readConfig();
  const httpServer = http.createServer(createRequestHandler(config));

  const redis = createClient({ url: config.redisUrl });
  const adapterSubscriber = redis.duplicate();
  for (const client of [redis, adapterSubscriber]) logErrorsOnce(client);
  await Promise.all([redis.connect(), adapterSubscriber.connect()]);
  try {
    await redis.sendCommand(['PRESENCE.COUNT', 'live-room']);
  } catch (err) {
    throw new Error(`the Redis at ${config.redisUrl} cannot run PRESENCE.COUNT (is the presence module loaded?): ${err.message}`);
  }

  const io = new Server(httpServer, {
    pingInterval: config.pingInterval,
    pingTimeout: config.pingTimeout,
    maxHttpBufferSize: config.maxHttpBufferSize,
    adapter: createAdapter(redis, adapterSubscriber),
  });
  io.use((socket, next) => {
    const userId = verifyToken(config.sessionSecret, socket.handshake.auth && socket.handshake.auth.token);
    if (userId === null) {
      next(new Error('unauthorized'));
      return;
    }
    socket.data.userId = userId;
    next();
  });

  const presence = await attachPresence(io, {
    redis,
    getUserId: (socket) => socket.data.userId,
    participantsIntervalMs: config.participantsIntervalMs,
    maxUsers: config.participantsLimit,
  });

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 10000).unref();
    await presence.close();
    await io.close();
    await Promise.allSettled([redis.close(), adapterSubscriber.close()]);
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  httpServer.listen(config.port, () => {
    console.log(`live-room listening on http://localhost:${httpServer.address().port}`);
  });
}

main().catch((err) => {
  console.error(`live-room: ${err.message}`);
  process.exit(1);
});
