'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const { createPresenceClient } = require('../src/client');

/**
 * A stand-in for a connected socket.io-client socket that acknowledges every request `ack`
 * (or `ack(event)` when it is a function).
 */
function fakeSocket(ack) {
  const socket = new EventEmitter();
  socket.connected = true;
  socket.requests = [];
  socket.timeout = (ms) => ({
    emitWithAck: async (event, payload) => {
      socket.requests.push({ ms, event, payload });
      return typeof ack === 'function' ? ack(event) : ack;
    },
  });
  return socket;
}

test('client: an option given as undefined takes its default', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const socket = fakeSocket({ ok: true, roomId: 'lobby', users: ['u'], count: 1, truncated: false });
  const presence = createPresenceClient(socket, {
    heartbeatIntervalMs: undefined,
    heartbeatJitterMs: undefined,
    ackTimeoutMs: undefined,
    onForceLeave: undefined,
    onParticipants: undefined,
  });
  assert.equal((await presence.join('lobby')).ok, true);
  assert.deepEqual(socket.requests, [{ ms: 10000, event: 'room:join', payload: { roomId: 'lobby' } }]);
  t.mock.timers.tick(24999);
  assert.equal(socket.requests.length, 1, 'no heartbeat before 25 s');
  t.mock.timers.tick(5001);
  assert.equal(socket.requests.length, 2, 'one heartbeat within 25–30 s');
  assert.equal(socket.requests[1].event, 'room:heartbeat');
  socket.emit('room:participants', { roomId: 'lobby', users: ['u'], count: 1, truncated: false });
  socket.emit('room:force-leave', { roomId: 'lobby', reason: 'stale' });
  assert.deepEqual(presence.rooms(), []);
  presence.close();
});

test('client: a bad option is refused with its name and value', () => {
  const socket = fakeSocket({ ok: true });
  const refused = (options) => () => createPresenceClient(socket, options);
  assert.throws(refused({ heartbeatIntervalMs: 0 }), {
    name: 'TypeError',
    message: 'createPresenceClient: options.heartbeatIntervalMs must be an integer number of milliseconds from 1 to 2147483647 (got 0)',
  });
  assert.throws(refused({ heartbeatJitterMs: -1 }), {
    message: 'createPresenceClient: options.heartbeatJitterMs must be an integer number of milliseconds from 0 to 2147483647 (got -1)',
  });
  assert.throws(refused({ ackTimeoutMs: '10s' }), {
    message: 'createPresenceClient: options.ackTimeoutMs must be an integer number of milliseconds from 1 to 2147483647 (got "10s")',
  });
  assert.throws(refused({ onForceLeave: null }), { message: 'createPresenceClient: options.onForceLeave must be a function (got null)' });
  assert.throws(refused({ onParticipants: {} }), {
    message: 'createPresenceClient: options.onParticipants must be a function (got an object)',
  });
  assert.equal(socket.listenerCount('connect'), 0, 'nothing is registered on the socket');
  createPresenceClient(socket, { heartbeatJitterMs: 0 }).close();
});

test('client: join and update carry the data asked for; an update answered not-present ends the room', async () => {
  const joined = { ok: true, roomId: 'lobby', users: ['u'], members: [{ userId: 'u', data: null }], count: 1, truncated: false };
  const socket = fakeSocket((event) => (event === 'room:join' ? joined : { ok: false, error: 'not-present' }));
  const forceLeaves = [];
  const presence = createPresenceClient(socket, { onForceLeave: (event) => forceLeaves.push(event) });
  await presence.join('lobby', { data: { status: 'here' } });
  await presence.join('plain');
  assert.deepEqual(await presence.update('lobby', { status: 'away' }), { ok: false, error: 'not-present' });
  assert.deepEqual(
    socket.requests.map(({ event, payload }) => [event, payload]),
    [
      ['room:join', { roomId: 'lobby', data: { status: 'here' } }],
      ['room:join', { roomId: 'plain' }],
      ['room:update', { roomId: 'lobby', data: { status: 'away' } }],
    ],
  );
  assert.deepEqual(forceLeaves, [{ roomId: 'lobby', reason: 'not-present' }]);
  assert.deepEqual(presence.rooms(), ['plain']);
  presence.close();
});
