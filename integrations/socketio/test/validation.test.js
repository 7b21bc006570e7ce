'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { isValidId } = require('../src/ids');
const { isValidSocket, socketIdOf, nodeOf } = require('../src/socket-ids');
const { newNodeId, nodeIdPrefix } = require('../src/node-lease');
const { Server } = require('socket.io');
const { attachPresence } = require('../src/server');
const { parseRoomRequest } = require('../src/room-request');
const { encodeData } = require('../src/presence-data');
const { parsePresenceEvent, presenceEventPattern, roomEventChannel, nodeDownChannel } = require('../src/presence-events');
const { keySlot, tagsBySlot, SLOTS } = require('../src/slots');
const { isClusterClient } = require('../src/topology');

test('ids: 1 to 128 bytes of A-Z a-z 0-9 - _ . @ + = ~', () => {
  for (const id of ['1', '123', 'a-b_c.d@e+f=g~h', 'A'.repeat(128), 'Xyz_-0']) assert.equal(isValidId(id), true, id);
  const refused = ['', 'A'.repeat(129), 'a:b', 'a{b}', 'a*', 'a?', 'a[b]', 'a\\b', 'a/b', 'a"b', "a'b", 'a b', 'a\nb', 'é', 'a\u0000'];
  for (const id of refused) assert.equal(isValidId(id), false, JSON.stringify(id));
  for (const value of [undefined, null, 123, {}, [], Buffer.from('abc')]) assert.equal(isValidId(value), false);
});

test('sockets of presence keys: an id, or <node>/<socket>', () => {
  for (const socket of ['Xyz', 'web-1.7421.k3f9x0/Xyz_-0', `${'n'.repeat(128)}/${'s'.repeat(128)}`]) {
    assert.equal(isValidSocket(socket), true, socket);
  }
  for (const socket of ['', '/', 'a/', '/b', 'a/b/c', 'a:b/c', `${'n'.repeat(129)}/s`, 'a b/c', 42, null]) {
    assert.equal(isValidSocket(socket), false, JSON.stringify(socket));
  }
  assert.equal(socketIdOf('node.1.abc/Xyz'), 'Xyz');
  assert.equal(socketIdOf('Xyz'), 'Xyz');
  assert.equal(nodeOf('node.1.abc/Xyz'), 'node.1.abc');
  assert.equal(nodeOf('Xyz'), null);
});

test('node ids: host name, pid and a random part, within the id rules', () => {
  assert.equal(nodeIdPrefix('web-1', 7421), 'web-1.7421.');
  assert.equal(nodeIdPrefix('höst name:8/x', 12), 'h-st-name-8-x.12.');
  assert.equal(nodeIdPrefix('', 5), 'node.5.');
  const long = nodeIdPrefix('h'.repeat(300), 4194304);
  assert.equal(long.length, 128 - 6);
  assert.match(long, /^h+\.4194304\.$/);
  const ids = new Set();
  for (let i = 0; i < 100; i += 1) {
    const id = newNodeId(long);
    assert.equal(isValidId(id), true, id);
    assert.match(id, /^h+\.4194304\.[0-9a-z]{6}$/);
    ids.add(id);
  }
  assert.ok(ids.size >= 99, `${ids.size} distinct ids of 100`);
  assert.match(newNodeId(nodeIdPrefix()), new RegExp(`^[A-Za-z0-9\\-_.@+=~]+\\.${process.pid}\\.[0-9a-z]{6}$`));
});

test('room requests: one plain object with a valid roomId', () => {
  assert.deepEqual(parseRoomRequest([{ roomId: 'lobby' }]), { roomId: 'lobby', data: undefined });
  assert.deepEqual(parseRoomRequest([{ roomId: 'lobby', userId: 'someone-else' }]), { roomId: 'lobby', data: undefined });
  assert.deepEqual(parseRoomRequest([{ roomId: 'lobby', data: { status: 'away' } }]), { roomId: 'lobby', data: { status: 'away' } });
  assert.deepEqual(parseRoomRequest([{ roomId: 'lobby', data: null }]), { roomId: 'lobby', data: null });
  const code = (args) => {
    try {
      parseRoomRequest(args);
    } catch (err) {
      return err.code;
    }
    return 'accepted';
  };
  for (const args of [[], [null], ['lobby'], [42], [['lobby']], [Buffer.from('x')], [{ roomId: 'a' }, 'extra']]) {
    assert.equal(code(args), 'invalid-payload', JSON.stringify(args));
  }
  for (const roomId of [undefined, 42, '', 'a:b', 'x'.repeat(129), ['a'], { a: 1 }]) {
    assert.equal(code([{ roomId }]), 'invalid-room', JSON.stringify(roomId));
  }
});

test('presence events: channel and JSON payload', () => {
  assert.equal(presenceEventPattern(0), '__presence@0__:*');
  assert.deepEqual(
    parsePresenceEvent('__presence@0__:force-leave', '{"room":"123","user":"45","socket":"Xyz","count":17,"reason":"stale"}'),
    { type: 'force-leave', room: '123', user: '45', socket: 'Xyz', count: 17, reason: 'stale' },
  );
  assert.deepEqual(parsePresenceEvent('__presence@3__:join', '{"room":"r","user":"u","socket":"s","count":1}'), {
    type: 'join',
    room: 'r',
    user: 'u',
    socket: 's',
    count: 1,
    reason: undefined,
  });
  assert.deepEqual(parsePresenceEvent('__presence@0__:reset', '{"reason":"flushdb"}'), { type: 'reset', reason: 'flushdb' });
  assert.equal(parsePresenceEvent('__presence@0__:unknown', '{}'), null);
  assert.equal(parsePresenceEvent('other', '{}'), null);
  assert.equal(parsePresenceEvent('__presence@0__:join', 'not json'), null);
  assert.equal(parsePresenceEvent('__presence@0__:join', '{"room":"a:b","user":"u","socket":"s","count":1}'), null);
  assert.equal(parsePresenceEvent('__presence@0__:leave', '{"room":"r","user":"u","socket":"s","count":1}'), null);
  assert.equal(parsePresenceEvent('__presence@0__:leave', '{"room":"r","user":"u","socket":"s","count":-1,"reason":"leave"}'), null);
});

test('presence events: node-qualified sockets and node-down', () => {
  assert.deepEqual(
    parsePresenceEvent(
      '__presence@0__:force-leave',
      '{"room":"r","user":"u","socket":"web-1.7.abc123/Xyz","count":0,"reason":"node-down"}',
    ),
    { type: 'force-leave', room: 'r', user: 'u', socket: 'web-1.7.abc123/Xyz', count: 0, reason: 'node-down' },
  );
  assert.equal(parsePresenceEvent('__presence@0__:join', '{"room":"r","user":"u","socket":"a/b/c","count":1}'), null);
  assert.deepEqual(parsePresenceEvent('__presence@0__:node-down', '{"node":"web-1.7.abc123","presences":3}'), {
    type: 'node-down',
    node: 'web-1.7.abc123',
    presences: 3,
  });
  assert.equal(parsePresenceEvent('__presence@0__:node-down', '{"node":"a/b","presences":3}'), null);
  assert.equal(parsePresenceEvent('__presence@0__:node-down', '{"node":"n","presences":-1}'), null);
  assert.equal(parsePresenceEvent('__presence@0__:node-down', '{"node":"n"}'), null);
});

test("presence events on a room's sharded channel: the event in the payload, the channel's room", () => {
  assert.equal(roomEventChannel(0, 'r-1'), '__presence@0__:{r-1}');
  assert.equal(nodeDownChannel(0), '__presence@0__:node-down');
  assert.deepEqual(parsePresenceEvent('__presence@0__:{r}', '{"room":"r","user":"u","socket":"n/s","count":1,"event":"join"}'), {
    type: 'join',
    room: 'r',
    user: 'u',
    socket: 'n/s',
    count: 1,
    reason: undefined,
  });
  assert.deepEqual(
    parsePresenceEvent('__presence@0__:{r}', '{"room":"r","user":"u","socket":"s","count":0,"reason":"stale","event":"force-leave"}'),
    { type: 'force-leave', room: 'r', user: 'u', socket: 's', count: 0, reason: 'stale' },
  );
  assert.deepEqual(parsePresenceEvent('__presence@0__:{r}', '{"room":"r","reason":"flushall","event":"reset"}'), {
    type: 'reset',
    reason: 'flushall',
    room: 'r',
  });
  const refused = [
    ['__presence@0__:{r}', '{"room":"other","user":"u","socket":"s","count":1,"event":"join"}'],
    ['__presence@0__:{r}', '{"room":"r","user":"u","socket":"s","count":1}'],
    ['__presence@0__:{r}', '{"room":"r","user":"u","socket":"s","count":1,"event":"unknown"}'],
    ['__presence@0__:{r}', '{"room":"r","user":"u","socket":"s","count":1,"event":["join"]}'],
    ['__presence@0__:{r}', '{"room":"r","node":"n","presences":1,"event":"node-down"}'],
    ['__presence@0__:{a:b}', '{"room":"a:b","user":"u","socket":"s","count":1,"event":"join"}'],
    ['__presence@0__:{}', '{"event":"reset","reason":"flushall"}'],
    ['__presence@0__:{r}', 'null'],
  ];
  for (const [channel, message] of refused) assert.equal(parsePresenceEvent(channel, message), null, `${channel} ${message}`);
});

test('cluster: hash slots as Redis computes them, a short tag for every slot', () => {
  assert.equal(keySlot('foo'), 12182);
  assert.equal(keySlot('123456789'), 0x31c3 % SLOTS);
  assert.equal(keySlot('{user1000}.following'), keySlot('user1000'));
  assert.equal(keySlot('room:presence:{r-1}:u'), keySlot('r-1'));
  // The slots node-redis routes by (its cluster-key-slot), for tags empty, unclosed, nested, two, non-ASCII.
  const expected = { 'a{}b': 13694, '{}': 15257, '{a': 10276, 'a}{b}': 3300, '{{a}}': 10276, 'x{y}z{w}': 12222, 'é{ü}': 9552 };
  for (const [key, slot] of Object.entries(expected)) assert.equal(keySlot(key), slot, key);
  const tags = tagsBySlot();
  assert.equal(tags.length, SLOTS);
  tags.forEach((tag, slot) => {
    assert.equal(keySlot(tag), slot);
    assert.ok(isValidId(tag) && tag.length <= 3, tag);
  });
  assert.equal(isClusterClient({ slots: [], masters: [], nodeClient() {} }), true);
  assert.equal(isClusterClient({ sendCommand() {}, duplicate() {} }), false);
});

test('attachPresence refuses bad options and connection state recovery', async () => {
  const redis = { sendCommand() {}, duplicate() {} };
  await assert.rejects(attachPresence(new Server(), { getUserId: () => 'u' }), /options.redis/);
  await assert.rejects(attachPresence(new Server(), { redis }), /getUserId/);
  await assert.rejects(attachPresence(new Server(), { redis, getUserId: () => 'u', maxUsers: 0 }), /maxUsers/);
  await assert.rejects(
    attachPresence(new Server({ connectionStateRecovery: {} }), { redis, getUserId: () => 'u' }),
    /connection state recovery must stay off/,
  );
});

test('attachPresence names the option and the value it refuses', async () => {
  const redis = { sendCommand() {}, duplicate() {} };
  const refused = (options) => attachPresence(new Server(), { redis, getUserId: () => 'u', ...options });
  await assert.rejects(refused({ db: -1 }), {
    name: 'TypeError',
    message: 'attachPresence: options.db must be a non-negative integer (got -1)',
  });
  await assert.rejects(refused({ maxUsers: 1.5 }), { message: 'attachPresence: options.maxUsers must be a positive integer (got 1.5)' });
  await assert.rejects(refused({ participantsIntervalMs: '250' }), {
    message: 'attachPresence: options.participantsIntervalMs must be an integer number of milliseconds from 0 to 2147483647 (got "250")',
  });
  await assert.rejects(refused({ commandTimeoutMs: 2 ** 31 }), {
    message: 'attachPresence: options.commandTimeoutMs must be an integer number of milliseconds from 1 to 2147483647 (got 2147483648)',
  });
  for (const nodeLeaseMs of [0, 999, 86400001, 1.5, '10000']) {
    await assert.rejects(refused({ nodeLeaseMs }), {
      name: 'TypeError',
      message: `attachPresence: options.nodeLeaseMs must be an integer number of milliseconds from 1000 to 86400000 (got ${
        typeof nodeLeaseMs === 'string' ? JSON.stringify(nodeLeaseMs) : nodeLeaseMs
      })`,
    });
  }
  await assert.rejects(refused({ namespace: /^\/rooms-\d+$/ }), {
    message: 'attachPresence: options.namespace must be a string (got an object)',
  });
  await assert.rejects(refused({ logger: {} }), {
    message: 'attachPresence: options.logger must be an object with a warn(message) method (got an object)',
  });
  await assert.rejects(refused({ redis: {} }), {
    message: 'attachPresence: options.redis must be a connected node-redis client (got an object)',
  });
});

test('presence data: one JSON value, at most 16 levels deep, no prototype keys, at most maxBytes of JSON', () => {
  const code = (value, maxBytes = 1024) => {
    try {
      return encodeData(value, maxBytes);
    } catch (err) {
      return err.code;
    }
  };
  assert.equal(code({ name: 'Ana María', tags: ['a', 1, true, null], n: -0.5 }), '{"name":"Ana María","tags":["a",1,true,null],"n":-0.5}');
  assert.equal(code(Object.assign(Object.create(null), { a: 1 })), '{"a":1}');
  assert.equal(code('plain string'), '"plain string"');
  const nested = (depth) => {
    let value = 1;
    for (let i = 0; i < depth; i += 1) value = [value];
    return value;
  };
  assert.equal(code(nested(16)), `${'['.repeat(16)}1${']'.repeat(16)}`);
  for (const value of [
    NaN,
    Infinity,
    undefined,
    () => 1,
    10n,
    Symbol('s'),
    new Date(0),
    new Map(),
    Buffer.from('x'),
    { a: undefined },
    [1, undefined],
    nested(17),
    JSON.parse('{"__proto__": {"x": 1}}'),
    { constructor: 1 },
    { a: { prototype: 1 } },
  ]) {
    assert.equal(code(value), 'invalid-data', String(typeof value === 'object' ? JSON.stringify(value) : typeof value));
  }
  assert.equal(code('é'.repeat(10), 21), 'data-too-large', 'bytes of UTF-8, not characters');
  assert.equal(code('é'.repeat(10), 22), `"${'é'.repeat(10)}"`);
  assert.equal(code(new Array(5000).fill(0), 4096), 'data-too-large');
});

test('presence events: update, and join with data embedded', () => {
  const payload = '{"room":"r","user":"u","socket":"n/s","count":2,"data":{"status":"away"}}';
  const base = { room: 'r', user: 'u', socket: 'n/s', count: 2, reason: undefined };
  assert.deepEqual(parsePresenceEvent('__presence@0__:update', payload), { type: 'update', ...base });
  assert.deepEqual(parsePresenceEvent('__presence@0__:join', payload), { type: 'join', ...base });
  assert.deepEqual(parsePresenceEvent('__presence@0__:{r}', payload.replace('{"room"', '{"event":"update","room"')), {
    type: 'update',
    ...base,
  });
});
