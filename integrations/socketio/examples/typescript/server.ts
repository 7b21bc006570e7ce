// A Socket.IO server with room presence, written against the package's types. Compiled by
// `npm run typecheck` (tsc --noEmit); not run.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createClient } from 'redis';
import {
  attachPresence,
  presenceChannel,
  isValidId,
  ErrorCode,
  PresenceError,
  type AttachPresenceOptions,
  type PresenceClientToServerEvents,
  type PresenceServerToClientEvents,
  type PresenceHandle,
} from '@presence/socketio';

/** The application's own events, beside the presence ones. */
interface ChatClientToServerEvents {
  'chat:send': (payload: { roomId: string; text: string }) => void;
}
interface ChatServerToClientEvents {
  'chat:message': (payload: { roomId: string; userId: string; text: string }) => void;
}
/** What the handshake middleware stores on each socket. */
interface SocketData {
  userId?: string;
}

type ClientToServer = PresenceClientToServerEvents & ChatClientToServerEvents;
type ServerToClient = PresenceServerToClientEvents & ChatServerToClientEvents;

async function main(): Promise<void> {
  const redis = createClient({ url: process.env.REDIS_URL });
  redis.on('error', (err: Error) => console.warn(`redis: ${err.message}`));
  await redis.connect();

  const httpServer = createServer();
  const io = new Server<ClientToServer, ServerToClient, Record<string, never>, SocketData>(httpServer);
  io.use((socket, next) => {
    const token: unknown = socket.handshake.auth.token;
    if (isValidId(token)) {
      socket.data.userId = token; // an application would verify a signed token here
      next();
    } else {
      next(new Error(ErrorCode.UNAUTHORIZED));
    }
  });

  const presence = await attachPresence(io, {
    redis,
    // `socket` is this server's typed socket: `socket.data` is SocketData.
    getUserId: (socket) => socket.data.userId,
    namespace: '/',
    db: 0,
    participantsIntervalMs: 250,
    maxUsers: 200,
    commandTimeoutMs: 2000,
    nodeLeaseMs: 10000,
    // The server decides what a presence carries: here the user id from the session and the
    // status the client asked for; `socket.data` is SocketData, `requested` one JSON value.
    presenceData: (socket, requested, { event }) => ({
      user: socket.data.userId ?? null,
      status:
        requested !== null && typeof requested === 'object' && !Array.isArray(requested) && requested.status === 'away' ? 'away' : 'here',
      event,
    }),
    maxDataBytes: 1024,
    logger: console,
  });
  const nodeId: string = presence.nodeId; // e.g. `web-1.7421.k3f9x0`, for the logs
  console.log(`presence node ${nodeId}`);

  // Asynchronous user ids are accepted too.
  const options: AttachPresenceOptions = {
    redis,
    getUserId: async (socket) => (typeof socket.handshake.auth.user === 'string' ? socket.handshake.auth.user : null),
    logger: { warn: (message: string) => process.stderr.write(`${message}\n`) },
  };
  void options;

  io.on('connection', (socket) => {
    socket.on('chat:send', ({ roomId, text }) => {
      const userId = socket.data.userId;
      if (!userId || !isValidId(roomId)) return;
      const channel: `presence:${string}` = presenceChannel(roomId);
      // The same audience as room:participants: this server's sockets present in the room.
      io.local.to(channel).emit('chat:message', { roomId, userId, text });
    });
    // The server's own event map knows the presence events and their payloads.
    const forceLeave: Parameters<ServerToClient['room:force-leave']>[0] = { roomId: 'lobby', reason: 'replaced' };
    void forceLeave;
  });

  const handle: PresenceHandle = presence;
  void handle;
  // @ts-expect-error the handle has close() and nodeId only
  void presence.stop();
  // @ts-expect-error the node id is read-only
  presence.nodeId = 'other';

  // @ts-expect-error a user id is a string: a number would make every request `unauthorized`
  void attachPresence(io, { redis, getUserId: () => 42 });

  httpServer.listen(3000); // only after attachPresence resolved

  process.on('SIGTERM', () => {
    void (async () => {
      await presence.close(); // leaves every presence of this server
      await io.close();
      await redis.close();
      process.exit(0);
    })();
  });
}

main().catch((err: unknown) => {
  const code = err instanceof PresenceError ? err.code : 'startup';
  console.error(`server: ${code}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
