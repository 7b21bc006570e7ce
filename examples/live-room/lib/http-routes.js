'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { STATUS_CODES } = require('node:http');
const { isValidId } = require('@presence/socketio');
const { issueToken } = require('../auth-token');
const { profileOf } = require('./profiles');
const { parseRequestTarget } = require('./request-target');
const { logError, ThrottledLog } = require('./log');

/** Malformed requests: at most one log line a second, whatever their number. */
const malformed = new ThrottledLog(1000);

const PUBLIC_DIR = path.join(__dirname, '..', 'public');

/** The page and its assets: URL path → file and content type. */
const STATIC_FILES = {
  '/': { file: path.join(PUBLIC_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/names.js': { file: path.join(PUBLIC_DIR, 'names.js'), type: 'text/javascript; charset=utf-8' },
  '/messages.js': { file: path.join(PUBLIC_DIR, 'messages.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: path.join(PUBLIC_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  '/favicon.ico': { file: path.join(PUBLIC_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  '/presence-client.js': { file: require.resolve('@presence/socketio/client'), type: 'text/javascript; charset=utf-8' },
};

/** Sent with every answer: no sniffing, no framing, scripts and styles from this origin only. */
const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/**
 * Reads every static file once, at startup, so that serving them cannot fail later.
 * @returns {Map<string, {body: Buffer, type: string}>}
 */
function loadStaticFiles() {
  const files = new Map();
  for (const [urlPath, { file, type }] of Object.entries(STATIC_FILES)) {
    files.set(urlPath, { body: fs.readFileSync(file), type });
  }
  return files;
}

function send(res, status, headers, body) {
  res.writeHead(status, { ...COMMON_HEADERS, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendJson(res, status, value, headers = {}) {
  send(res, status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, JSON.stringify(value));
}

/** A 4xx answer; the connection is closed after it so that a confused client starts afresh. */
function refuse(res, status, error, headers = {}) {
  sendJson(res, status, { error }, { connection: 'close', ...headers });
}

/**
 * The API: the development login, the page's settings and a read-only view of a room (for a
 * page that is no longer in the room it shows).
 */
function apiRoutes({ config, presence, outages }) {
  return {
    '/api/token': (res, params) => {
      if (params.has('name')) {
        const profile = params.has('user') ? null : profileOf(params.get('name'));
        if (profile === null) refuse(res, 400, 'invalid-name');
        else sendJson(res, 200, { token: issueToken(config.sessionSecret, profile.userId, profile), userId: profile.userId });
        return;
      }
      const user = params.get('user');
      if (!isValidId(user)) refuse(res, 400, 'invalid-user');
      else sendJson(res, 200, { token: issueToken(config.sessionSecret, user), userId: user });
    },
    '/api/config': (res) => {
      sendJson(res, 200, { heartbeatIntervalMs: config.heartbeatIntervalMs, heartbeatJitterMs: config.heartbeatJitterMs });
    },
    '/api/room': async (res, params) => {
      const roomId = params.get('id');
      if (!isValidId(roomId)) {
        refuse(res, 400, 'invalid-room');
        return;
      }
      try {
        const handle = presence();
        if (handle === null) throw new Error('presence is not attached yet');
        const room = await handle.readRoom(roomId);
        outages.recovered('GET /api/room');
        sendJson(res, 200, room);
      } catch (err) {
        outages.failed('GET /api/room', `cannot read room ${roomId}: ${err.message}`);
        sendJson(res, 503, { error: 'unavailable' }, { 'retry-after': '2' });
      }
    },
  };
}

/**
 * The HTTP request handler: `GET`/`HEAD` of the page, its assets and the API; 400 for a
 * request target that cannot be parsed, 405 for other methods, 404 for other paths. Socket.IO
 * serves its own client at /socket.io/socket.io.js on the same server.
 * @param {{config: object, presence: () => import('@presence/socketio/server').PresenceHandle | null, outages: import('./log').OutageLog}} context
 *   `presence` gives the presence integration once it is attached (null before)
 */
function createRequestHandler(context) {
  const files = loadStaticFiles();
  const api = apiRoutes(context);
  return (req, res) => {
    const target = parseRequestTarget(req.url);
    if (target === null) {
      refuse(res, 400, 'bad-request');
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, 'method-not-allowed', { allow: 'GET, HEAD' });
    } else if (Object.hasOwn(api, target.path)) {
      Promise.resolve()
        .then(() => api[target.path](res, target.params))
        .catch((err) => {
          logError(`${req.method} ${target.path} failed: ${err.stack}`);
          if (!res.headersSent) sendJson(res, 500, { error: 'internal' });
        });
    } else if (files.has(target.path)) {
      const { body, type } = files.get(target.path);
      send(res, 200, { 'content-type': type, 'cache-control': 'no-cache' }, body);
    } else {
      refuse(res, 404, 'not-found');
    }
  };
}

/**
 * Answers a request that Node's HTTP parser refused (malformed request line or header,
 * headers too large, unknown method, timeout) and logs it in one line (at most one such line a
 * second; the next one says how many were held back).
 * @param {Error & {code?: string}} err
 * @param {import('node:net').Socket} socket
 */
function onClientError(err, socket) {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = { HPE_HEADER_OVERFLOW: 431, ERR_HTTP_REQUEST_TIMEOUT: 408 }[err.code] ?? 400;
  malformed.error(`http: answered ${status} to a malformed request from ${socket.remoteAddress}: ${err.code ?? err.message}`);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

module.exports = { createRequestHandler, onClientError };
