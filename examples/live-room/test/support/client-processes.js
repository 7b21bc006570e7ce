'use strict';

const { fork } = require('node:child_process');
const path = require('node:path');
const { track, stopProcess } = require('./shared');

const CLIENT_PROCESS_JS = path.join(__dirname, 'client-process.js');

/**
 * Starts a client process (see client-process.js) that joins `roomId` on `demo` as `user`;
 * resolves once it has joined, with the child and its join acknowledgement.
 * @param {import('./demo-server').DemoServer} demo
 * @param {string} user
 * @param {string} roomId
 * @returns {Promise<{child: import('node:child_process').ChildProcess, ack: object, kill: () => Promise<void>}>}
 */
async function startClientProcess(demo, user, roomId) {
  const env = { ...process.env, CLIENT_URL: demo.url, CLIENT_TOKEN: await demo.token(user), CLIENT_ROOM: roomId };
  const child = track(fork(CLIENT_PROCESS_JS, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const ack = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client process of ${user} did not join in time`)), 15000);
    child.on('message', (message) => {
      if (message.type === 'joined') {
        clearTimeout(timer);
        resolve(message.ack);
      } else if (message.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`client process of ${user}: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`client process of ${user} exited (${signal ?? code})`));
    });
  });
  return { child, ack, kill: () => stopProcess(child, 'SIGKILL') };
}

module.exports = { startClientProcess };
