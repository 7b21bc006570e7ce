// A browser script (no import): `src/client.js` loaded with a <script> tag defines the global
// `PresenceClient`. Compiled by `npm run typecheck` (tsc --noEmit); not run.
/// <reference path="../../src/client.d.ts" />

declare const socket: PresenceClient.PresenceClientSocket;

const roomPresence = PresenceClient.createPresenceClient(socket, {
  onForceLeave: ({ reason }) => {
    if (reason !== 'not-present') console.warn(`presence ended: ${reason}`);
    alert('You are not in the chatroom');
  },
});
void roomPresence.join('lobby').then((ack) => {
  if (!ack.ok) console.warn(ack.error);
});
