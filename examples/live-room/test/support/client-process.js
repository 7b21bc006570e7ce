'use strict';

/*
 * A user's app as a process of its own, so that a test can kill it (SIGKILL: the kernel
 * closes its connection, as when an app is force-closed). Forked with IPC and the environment
 * CLIENT_URL, CLIENT_TOKEN and CLIENT_ROOM; it connects, joins the room, heartbeats, and
 * reports {type: 'joined', ack, socketId} and {type: 'force-leave', roomId, reason} to its parent.
 */
const { TestClient } = require('./shared');

async function main() {
  const { CLIENT_URL, CLIENT_TOKEN, CLIENT_ROOM } = process.env;
  const client = new TestClient(CLIENT_URL, { auth: { token: CLIENT_TOKEN } });
  client.socket.on('room:force-leave', (event) => process.send({ type: 'force-leave', ...event }));
  await client.connected();
  const ack = await client.join(CLIENT_ROOM);
  process.send({ type: 'joined', ack, socketId: client.socket.id });
}

main().catch((err) => {
  process.send({ type: 'error', message: err.message });
  process.exit(1);
});
