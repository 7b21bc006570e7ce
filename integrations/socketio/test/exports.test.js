'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');

// The same names as test/types/exports.ts, which checks them against the declarations.
const ENTRY_POINTS = {
  '@presence/socketio': [
    'attachPresence',
    'presenceChannel',
    'createPresenceClient',
    'ErrorCode',
    'PresenceError',
    'isValidId',
    'MAX_ID_BYTES',
  ],
  '@presence/socketio/server': ['attachPresence', 'presenceChannel'],
  '@presence/socketio/client': ['createPresenceClient'],
};

test('each entry point exports what its declarations declare', () => {
  for (const [name, exports] of Object.entries(ENTRY_POINTS)) {
    assert.deepEqual(Object.keys(require(name)).sort(), [...exports].sort(), name);
  }
});

test('the internal modules are not exported (tests require them by path)', () => {
  for (const name of [
    'room-request',
    'options',
    'presence-events',
    'presence-commands',
    'presence-subscriber',
    'node-lease',
    'cluster',
    'cluster-subscriber',
    'cluster-map',
    'cluster-lease-shards',
    'slots',
    'topology',
    'topology-standalone',
    'presence-server',
    'room-requests',
    'local-presences',
    'redis-events',
    'resync',
    'socket-session',
    'socket-ids',
    'retry',
    'warnings',
    'outage-log',
    'close-client',
    'presence-channel',
  ]) {
    for (const path of [`@presence/socketio/src/${name}`, `@presence/socketio/src/${name}.js`, `@presence/socketio/${name}`]) {
      assert.throws(() => require(path), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }, path);
    }
  }
});

test('ErrorCode holds the codes of the ErrorCode type', () => {
  const { ErrorCode } = require('@presence/socketio');
  assert.deepEqual(Object.values(ErrorCode).sort(), [
    'data-too-large',
    'internal',
    'invalid-data',
    'invalid-payload',
    'invalid-room',
    'not-present',
    'shutting-down',
    'timeout',
    'unauthorized',
    'unavailable',
  ]);
});
