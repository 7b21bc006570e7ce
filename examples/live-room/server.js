'use strict';

/*
 * live-room: a demo of room presence on Socket.IO and Redis. Configured by the environment
 * (see the README): PORT, REDIS_URL, REDIS_CLUSTER, SESSION_SECRET, PING_INTERVAL_MS, PING_TIMEOUT_MS,
 * MAX_HTTP_BUFFER_SIZE, HEARTBEAT_INTERVAL_MS, PARTICIPANTS_INTERVAL_MS, PARTICIPANTS_LIMIT,
 * SHUTDOWN_TIMEOUT_MS, NODE_LEASE_MS, PRESENCE_ENGINE, PRESENCE_STALE_AFTER, PRESENCE_TTL,
 * PRESENCE_SWEEP_INTERVAL_MS.
 *
 * Exit status: 0 after a graceful stop, 1 after a stop that could not leave every presence or
 * after an unexpected error, 78 when it cannot start (a bad setting, the port in use, a Redis
 * without the presence module with PRESENCE_ENGINE=module): a supervisor should not start it again as is.
 */

const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');
const { createClient, createCluster } = require('redis');
const { attachPresence } = require('@presence/socketio');
const { verifyToken } = require('./auth-token');
const { readConfig } = require('./lib/config');
const { presenceData } = require('./lib/profiles');
const { createRequestHandler, onClientError } = require('./lib/http-routes');
const { trackConnections, handleProcessSignals } = require('./lib/shutdown');
const { logError, logInfo, OutageLog } = require('./lib/log');

const EXIT_CANNOT_START = 78;

/**
 * Connects the command client and the Socket.IO adapter's subscriber: clients of REDIS_URL, or,
 * with REDIS_CLUSTER, cluster clients of those root nodes. (`attachPresence` checks the engine:
 * with PRESENCE_ENGINE=module, a Redis without the module does not start the server.)
 */
async function connectRedis(config, outages) {
  const where = config.redisCluster ? `the Redis Cluster at ${config.redisCluster.join(',')}` : `the Redis at ${config.redisUrl}`;
  const redis = config.redisCluster
    ? createCluster({ rootNodes: config.redisCluster.map((url) => ({ url })) })
    : createClient({ url: config.redisUrl });
  const adapterSubscriber = redis.duplicate();
  const topic = config.redisCluster ? 'redis cluster' : `redis ${config.redisUrl}`;
  const names = [topic, `${topic} (adapter subscriber)`];
  [redis, adapterSubscriber].forEach((client, i) => {
    client.on('error', (err) => outages.failed(names[i], err.message || err.code || String(err)));
    client.on('ready', () => outages.recovered(names[i]));
    // A cluster client reports each node's connection apart.
    client.on('node-error', (err, node) => outages.failed(`${names[i]} node ${node.host}:${node.port}`, err.message || String(err)));
    client.on('node-ready', (node) => outages.recovered(`${names[i]} node ${node.host}:${node.port}`));
  });
  await Promise.all([redis.connect(), adapterSubscriber.connect()]);
  return { redis, adapterSubscriber, cluster: config.redisCluster !== null };
}

/**
 * The Socket.IO server: the Redis adapter (on a cluster its sharded form, whose messages stay
 * on one shard), and a handshake that must carry a valid login token (which gives the user id
 * and, for a login by name, the profile that `presenceData` stores).
 */
function createSocketServer(httpServer, config, { redis, adapterSubscriber, cluster }) {
  const io = new Server(httpServer, {
    pingInterval: config.pingInterval,
    pingTimeout: config.pingTimeout,
    maxHttpBufferSize: config.maxHttpBufferSize,
    adapter: cluster ? createShardedAdapter(redis, adapterSubscriber) : createAdapter(redis, adapterSubscriber),
  });
  io.use((socket, next) => {
    const { auth } = socket.handshake;
    const session = verifyToken(config.sessionSecret, auth && auth.token);
    if (session === null) {
      next(new Error('unauthorized'));
      return;
    }
    socket.data.userId = session.userId;
    socket.data.profile = session.profile;
    next();
  });
  return io;
}

/** Why `listen` failed, in one line that says what to do. */
function listenFailure(err, port) {
  if (err.code === 'EADDRINUSE') return `port ${port} is already in use: stop what uses it, or set PORT to another port (PORT=0 picks a free one)`;
  if (err.code === 'EACCES') return `not allowed to listen on port ${port}: choose a port above 1023 with PORT`;
  return `cannot listen on port ${port}: ${err.message}`;
}

/** Listens on `port`; resolves with the port served, rejects with a one-line reason. */
function listen(httpServer, port) {
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(new Error(listenFailure(err, port)));
    httpServer.once('error', onError);
    httpServer.listen(port, () => {
      httpServer.off('error', onError);
      httpServer.on('error', (err) => logError(`http server: ${err.message}`));
      resolve(httpServer.address().port);
    });
  });
}

async function main() {
  const config = readConfig();
  const outages = new OutageLog();
  const clients = await connectRedis(config, outages);
  let presence = null;
  const httpServer = http.createServer(createRequestHandler({ config, presence: () => presence, outages }));
  httpServer.on('clientError', onClientError);
  const connections = trackConnections(httpServer);
  const io = createSocketServer(httpServer, config, clients);
  presence = await attachPresence(io, {
    redis: clients.redis,
    getUserId: (socket) => socket.data.userId,
    presenceData: (socket, requested) => presenceData(socket.data, requested),
    participantsIntervalMs: config.participantsIntervalMs,
    maxUsers: config.participantsLimit,
    nodeLeaseMs: config.nodeLeaseMs,
    engine: config.engine,
    staleAfter: config.staleAfter,
    ttl: config.ttl,
    sweepIntervalMs: config.sweepIntervalMs,
    // The engine is named in the start line below, once the server listens.
    logger: { warn: (message) => console.warn(message) },
  });
  const port = await listen(httpServer, config.port);
  handleProcessSignals({
    presence,
    io,
    connections,
    redisClients: [clients.redis, clients.adapterSubscriber],
    timeoutMs: config.shutdownTimeoutMs,
  });
  logInfo(`presence node ${presence.nodeId} (node lease ${config.nodeLeaseMs} ms), ${presence.engine} engine`);
  console.log(`live-room listening on http://localhost:${port}`);
}

main().catch((err) => {
  logError(`cannot start: ${err.message}`);
  process.exit(EXIT_CANNOT_START);
});
