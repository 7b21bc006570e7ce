// A node-redis cluster client is accepted wherever a client is: checked by `npm run typecheck`.
import { Server } from 'socket.io';
import { createCluster } from 'redis';
import { attachPresence, type PresenceHandle } from '@presence/socketio';

export async function onCluster(io: Server): Promise<PresenceHandle> {
  const redis = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }, { url: 'redis://127.0.0.1:7001' }] });
  await redis.connect();
  return attachPresence(io, { redis, getUserId: (socket) => socket.handshake.auth.user });
}
