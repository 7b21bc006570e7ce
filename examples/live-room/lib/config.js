'use strict';

const crypto = require('node:crypto');

/** A setting of the environment that cannot be used; the server does not start. */
class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads an integer of `[min, max]` from the environment.
 * @param {string} name
 * @param {number} fallback
 * @param {{min?: number, max?: number}} [range]
 * @returns {number}
 */
function envInteger(name, fallback, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/**
 * Reads REDIS_CLUSTER, the root nodes of a Redis Cluster as comma-separated URLs
 * (`redis://host:port,redis://host:port`); null when it is not set.
 * @returns {string[] | null}
 */
function envClusterUrls() {
  const raw = process.env.REDIS_CLUSTER;
  if (raw === undefined || raw.trim() === '') return null;
  const urls = raw.split(',').map((part) => part.trim());
  for (const url of urls) {
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      // reported below
    }
    if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '' || parsed.port === '') {
      throw new ConfigError(`REDIS_CLUSTER must be comma-separated redis://host:port URLs of cluster nodes, got ${JSON.stringify(raw)}`);
    }
  }
  return urls;
}

/**
 * Reads PRESENCE_ENGINE: `auto` (the default: the module where Redis has it, else the script
 * engine), `module` or `script`.
 * @returns {'auto' | 'module' | 'script'}
 */
function envEngine() {
  const raw = (process.env.PRESENCE_ENGINE ?? '').trim();
  if (raw === '') return 'auto';
  if (raw === 'auto' || raw === 'module' || raw === 'script') return raw;
  throw new ConfigError(`PRESENCE_ENGINE must be auto, module or script, got ${JSON.stringify(raw)}`);
}

/**
 * The configuration, from the environment (see the README's table).
 * @returns {object}
 * @throws {ConfigError}
 */
function readConfig() {
  const heartbeatIntervalMs = envInteger('HEARTBEAT_INTERVAL_MS', 25000, { min: 100 });
  return {
    port: envInteger('PORT', 3000, { max: 65535 }),
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    redisCluster: envClusterUrls(),
    sessionSecret: process.env.SESSION_SECRET || crypto.randomBytes(32).toString('hex'),
    pingInterval: envInteger('PING_INTERVAL_MS', 25000, { min: 1 }),
    pingTimeout: envInteger('PING_TIMEOUT_MS', 20000, { min: 1 }),
    maxHttpBufferSize: envInteger('MAX_HTTP_BUFFER_SIZE', 1e6, { min: 1024 }),
    heartbeatIntervalMs,
    heartbeatJitterMs: Math.round(heartbeatIntervalMs / 5),
    participantsIntervalMs: envInteger('PARTICIPANTS_INTERVAL_MS', 250),
    participantsLimit: envInteger('PARTICIPANTS_LIMIT', 200, { min: 1 }),
    shutdownTimeoutMs: envInteger('SHUTDOWN_TIMEOUT_MS', 5000, { min: 100 }),
    nodeLeaseMs: envInteger('NODE_LEASE_MS', 10000, { min: 1000, max: 86400000 }),
    engine: envEngine(),
    // The script engine's liveness rule and sweep (the module has its own configs).
    staleAfter: envInteger('PRESENCE_STALE_AFTER', 90, { max: 315360000 }),
    ttl: envInteger('PRESENCE_TTL', 21600, { min: 1, max: 315360000 }),
    sweepIntervalMs: envInteger('PRESENCE_SWEEP_INTERVAL_MS', 1000, { min: 10, max: 3600000 }),
  };
}

module.exports = { readConfig, ConfigError };
