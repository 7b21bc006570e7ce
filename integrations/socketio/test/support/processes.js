'use strict';

const net = require('node:net');

/** Child processes still running, killed when the test process exits whatever happens. */
const running = new Set();

process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Registers a child process so that it never outlives the test process.
 * @param {import('node:child_process').ChildProcess} child
 * @returns {import('node:child_process').ChildProcess}
 */
function track(child) {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/**
 * Resolves when `child` has exited (at once if it already has).
 * @param {import('node:child_process').ChildProcess} child
 * @returns {Promise<void>}
 */
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Sends `signal` and waits for the exit; SIGKILL after `graceMs`.
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Signals} [signal='SIGTERM']
 * @param {number} [graceMs=10000]
 */
async function stopProcess(child, signal = 'SIGTERM', graceMs = 10000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Resolves with the first line of `stream` that matches `pattern` (its match), or rejects when
 * the process exits first or `timeoutMs` passes; the error carries the output seen so far.
 * @param {import('node:child_process').ChildProcess} child
 * @param {import('node:stream').Readable} stream
 * @param {RegExp} pattern
 * @param {number} timeoutMs
 * @param {string} what a name for error messages
 * @returns {Promise<RegExpMatchArray>}
 */
function waitForLine(child, stream, pattern, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let seen = '';
    let buffer = '';
    const finish = (err, match) => {
      clearTimeout(timer);
      stream.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(match);
    };
    const onData = (chunk) => {
      buffer += chunk;
      seen += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const match = pattern.exec(line);
        if (match) {
          finish(null, match);
          return;
        }
      }
    };
    const onExit = (code, signal) => finish(new Error(`${what} exited (${signal ?? code}) before it was ready:\n${seen.slice(-4000)}`));
    const timer = setTimeout(() => finish(new Error(`${what} not ready within ${timeoutMs} ms:\n${seen.slice(-4000)}`)), timeoutMs);
    stream.setEncoding('utf8');
    stream.on('data', onData);
    child.once('exit', onExit);
  });
}

module.exports = { track, stopProcess, freePort, waitForLine };
