// The values each entry point declares and the error codes, in step with test/exports.test.js,
// which checks the same names at run time: a declaration missing, or one the JavaScript lacks,
// fails one of them.
import type * as root from '@presence/socketio';
import type * as server from '@presence/socketio/server';
import type * as client from '@presence/socketio/client';
import type { ErrorCode } from '@presence/socketio';

export const rootExports = {
  attachPresence: true,
  presenceChannel: true,
  createPresenceClient: true,
  ErrorCode: true,
  PresenceError: true,
  isValidId: true,
  MAX_ID_BYTES: true,
} as const satisfies Record<keyof typeof root, true>;

export const serverExports = {
  attachPresence: true,
  presenceChannel: true,
} as const satisfies Record<keyof typeof server, true>;

export const clientExports = {
  createPresenceClient: true,
} as const satisfies Record<keyof typeof client, true>;

export const errorCodes = {
  'invalid-payload': true,
  'invalid-room': true,
  'invalid-data': true,
  'data-too-large': true,
  unauthorized: true,
  'not-present': true,
  unavailable: true,
  'shutting-down': true,
  internal: true,
  timeout: true,
} as const satisfies Record<ErrorCode, true>;
