export { attachPresence, presenceChannel } from './server';
export type {
  AttachPresenceOptions,
  PresenceHandle,
  PresenceDataContext,
  PresenceLogger,
  PresenceRedisClient,
  PresenceRedisCluster,
  ServerSocket,
} from './server';
export { createPresenceClient } from './client';
export type { PresenceClient, PresenceClientOptions, PresenceClientSocket } from './client';
export { ErrorCode, PresenceError } from './errors';
export type { ServerErrorCode } from './errors';
export { isValidId, MAX_ID_BYTES } from './ids';
export * from './protocol';
