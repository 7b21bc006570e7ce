'use strict';

const http = require('node:http');
const { spawn } = require('node:child_process');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { attachPresence } = require('../../src/server');
const { track, stopProcess, waitForLine } = require('./processes');

/**
 * An app server with the presence integration attached to a plain Redis URL, with exactly the
 * options given (no engine options are added: the caller names the engine). Its user id hook
 * trusts `auth.user` of the handshake (tests only).
 * @param {string} redisUrl
 * @param {object} presenceOptions options of attachPresence
 * @returns {Promise<{url: string, presence: import('../../src/server').PresenceHandle, warnings: string[], infos: string[], close: () => Promise<void>}>}
 */
async function startApp(redisUrl, presenceOptions) {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { pingInterval: 1000, pingTimeout: 1000 });
  const redis = createClient({ url: redisUrl, socket: { reconnectStrategy: 50 } });
  redis.on('error', () => {});
  await redis.connect();
  /** @type {string[]} */
  const warnings = [];
  /** @type {string[]} */
  const infos = [];
  let presence;
  try {
    presence = await attachPresence(io, {
      redis,
      getUserId: (socket) => socket.handshake.auth.user,
      participantsIntervalMs: 100,
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

/**
 * Runs {@link startApp} in a child process (so that a test can SIGKILL it): resolves once it
 * listens, with its URL, its node id and the process.
 * @param {string} redisUrl
 * @param {object} presenceOptions options of attachPresence (JSON: no functions)
 * @returns {Promise<{url: string, nodeId: string, child: import('node:child_process').ChildProcess, output: () => string, stop: (signal?: NodeJS.Signals) => Promise<void>}>}
 */
async function startAppProcess(redisUrl, presenceOptions) {
  const child = track(
    spawn(process.execPath, [__filename, redisUrl, JSON.stringify(presenceOptions)], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let output = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    output = (output + chunk).slice(-8000);
  });
  const [, json] = await waitForLine(child, child.stdout, /^READY (.*)$/, 20000, 'app server process');
  const { url, nodeId } = JSON.parse(json);
  return { url, nodeId, child, output: () => output, stop: (signal = 'SIGTERM') => stopProcess(child, signal) };
}

if (require.main === module) {
  const [redisUrl, options] = process.argv.slice(2);
  startApp(redisUrl, JSON.parse(options)).then(
    (app) => {
      process.stdout.write(`READY ${JSON.stringify({ url: app.url, nodeId: app.presence.nodeId })}\n`);
      const log = setInterval(() => {
        for (const line of app.warnings.splice(0)) process.stderr.write(`${line}\n`);
      }, 100);
      process.once('SIGTERM', () => {
        clearInterval(log);
        app.close().then(() => process.exit(0));
      });
    },
    (err) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    },
  );
}

module.exports = { startApp, startAppProcess };
