'use strict';

const { spawn } = require('node:child_process');
const { track, stopProcess, waitForLine } = require('./processes');
const { startSocketServer } = require('./socket-server');

/**
 * Runs {@link startSocketServer} (with the engine `presenceOptions` name) in a child process,
 * so that a test can SIGKILL it: resolves once it listens, with its URL, its node id and the
 * process.
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
  startSocketServer(redisUrl, JSON.parse(options)).then(
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

module.exports = { startAppProcess };
