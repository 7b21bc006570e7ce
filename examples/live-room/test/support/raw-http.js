'use strict';

const net = require('node:net');

/**
 * Sends `request` as is over a new TCP connection and resolves with what came back once the
 * server closed the connection (or after `timeoutMs`): the status code, the headers (lower
 * case) and the body.
 * @param {number} port
 * @param {string | Buffer} request
 * @param {number} [timeoutMs=5000]
 * @returns {Promise<{status: number | null, headers: Record<string, string>, body: string, raw: string}>}
 */
function rawRequest(port, request, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let raw = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      raw += chunk;
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseResponse(raw));
    });
  });
}

function parseResponse(raw) {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine, ...headerLines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: match ? Number(match[1]) : null, headers, body: end < 0 ? '' : raw.slice(end + 4), raw };
}

/** A GET (or another method) of `target` with a Host header and `Connection: close`. */
function requestLine(method, target, extraHeaders = '') {
  return `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extraHeaders}\r\n`;
}

module.exports = { rawRequest, requestLine };
