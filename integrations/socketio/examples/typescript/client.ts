// A Node client with room presence, written against the package's types. Compiled by
// `npm run typecheck` (tsc --noEmit); not run.
import { io, type Socket } from 'socket.io-client';
import {
  createPresenceClient,
  type ForceLeaveReason,
  type PresenceClient,
  type PresenceClientToServerEvents,
  type PresenceServerToClientEvents,
} from '@presence/socketio/client';
import type { ErrorCode } from '@presence/socketio';

function popupText(reason: ForceLeaveReason): string {
  switch (reason) {
    case 'stale':
    case 'expired':
    case 'replaced':
    case 'evicted':
    case 'no-ttl':
    case 'node-down':
    case 'deleted':
    case 'not-present':
    case 'reset':
      return `You are not in the chatroom (${reason})`;
    default: {
      const unknown: never = reason;
      return unknown;
    }
  }
}

function describeError(error: ErrorCode): string {
  switch (error) {
    case 'invalid-payload':
    case 'invalid-room':
    case 'invalid-data':
      return 'bad request';
    case 'data-too-large':
      return 'too much data';
    case 'unauthorized':
      return 'log in first';
    case 'not-present':
      return 'not in the room';
    case 'unavailable':
    case 'shutting-down':
    case 'internal':
    case 'timeout':
      return 'try again later';
    default: {
      const unknown: never = error;
      return unknown;
    }
  }
}

async function main(): Promise<void> {
  // A typed socket: `emitWithAck` knows the presence events and their acknowledgements.
  const socket: Socket<PresenceServerToClientEvents, PresenceClientToServerEvents> = io('http://localhost:3000', {
    auth: { token: 'alice' },
  });

  const presence: PresenceClient = createPresenceClient(socket, {
    heartbeatIntervalMs: 25_000,
    heartbeatJitterMs: 5_000,
    ackTimeoutMs: 10_000,
    onForceLeave: ({ roomId, reason }) => console.log(roomId, popupText(reason)),
    onParticipants: ({ roomId, users, count, truncated }) => {
      console.log(`${roomId}: ${count} viewers: ${users.join(', ')}${truncated ? ', …' : ''}`);
    },
  });

  const ack = await presence.join('lobby', { data: { status: 'here' } });
  if (ack.ok) {
    const { roomId, users, members, count, truncated } = ack;
    console.log(roomId, users.length, count, truncated);
    for (const { userId, data } of members) console.log(userId, data === null ? 'no data' : JSON.stringify(data));
  } else {
    console.log(describeError(ack.error));
  }

  // @ts-expect-error a failed join has no user list: `ok` must be checked first
  console.log(ack.users);

  const updated = await presence.update('lobby', { status: 'away' });
  if (updated.ok) console.log('stored', updated.data);
  else console.log(describeError(updated.error));
  // @ts-expect-error data is one JSON value: a function is not
  void presence.update('lobby', { status: () => 'away' });

  const left = await presence.leave('lobby');
  if (!left.ok) console.log(describeError(left.error));
  // @ts-expect-error a leave is acknowledged without a user list
  console.log(left.users);
  const rooms: string[] = presence.rooms();
  console.log(rooms);

  // The raw events, through the typed socket.
  const beat = await socket.timeout(5000).emitWithAck('room:heartbeat', { roomId: 'lobby' });
  if (!beat.ok && beat.error === 'not-present') console.log('lost the presence');
  socket.on('room:force-leave', ({ roomId, reason }) => console.log(roomId, popupText(reason)));

  // An untyped socket fits as well.
  const plain: Socket = io('http://localhost:3000');
  createPresenceClient(plain).close();

  // @ts-expect-error options are numbers of milliseconds
  createPresenceClient(socket, { heartbeatIntervalMs: '25s' });

  presence.close();
  socket.close();
}

void main();
