'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { isValidId } = require('@presence/socketio');
const { checkName, nameToId } = require('../public/names');
const Text = require('../public/messages');
const { parseRequestTarget } = require('../lib/request-target');

test('room names people type become valid ids', () => {
  const cases = {
    alice: 'alice',
    José: 'Jos~C3~A9',
    'Ana María': 'Ana_Mar~C3~ADa',
    'a:b': 'a~3Ab',
    'snake_case~x': 'snake~5Fcase~7Ex',
    'Mei Lin 林美': 'Mei_Lin_~E6~9E~97~E7~BE~8E',
    'x@y.z+1=2-3': 'x@y.z+1=2-3',
  };
  for (const [name, id] of Object.entries(cases)) {
    assert.deepEqual(nameToId(name), { ok: true, name, id }, name);
    assert.ok(isValidId(id), id);
  }
});

test('names are trimmed, blanks joined and control characters dropped; empty and too long are refused', () => {
  assert.deepEqual(nameToId('  Ana \t\n María  '), { ok: true, name: 'Ana María', id: 'Ana_Mar~C3~ADa' });
  assert.deepEqual(nameToId('bo\u0000b'), { ok: true, name: 'bob', id: 'bob' });
  assert.equal(nameToId('Jose\u0301').id, 'Jos~C3~A9', 'the same name whatever its Unicode form');
  assert.deepEqual(nameToId('   '), { ok: false, error: 'empty' });
  assert.equal(nameToId('x'.repeat(128)).ok, true);
  assert.deepEqual(nameToId('x'.repeat(129)), { ok: false, error: 'too-long' });
  assert.deepEqual(nameToId('é'.repeat(22)), { ok: false, error: 'too-long' });
  assert.deepEqual(nameToId('x'.repeat(300)), { ok: false, error: 'too-long' });
});

test('display names are normalized the same way and limited to 128 characters, whatever their bytes', () => {
  assert.deepEqual(checkName('  Ana \t\n María  '), { ok: true, name: 'Ana María' });
  assert.deepEqual(checkName('Jose\u0301'), { ok: true, name: 'José' });
  assert.deepEqual(checkName(' \u0000 '), { ok: false, error: 'empty' });
  assert.equal(checkName('é'.repeat(128)).ok, true);
  assert.equal(checkName('林'.repeat(128)).ok, true);
  assert.deepEqual(checkName('x'.repeat(129)), { ok: false, error: 'too-long' });
});

test('every reason and error code has words for people, never the code itself', () => {
  const reasons = ['replaced', 'stale', 'expired', 'node-down', 'not-present', 'reset', 'deleted', 'evicted', 'no-ttl', 'something-new'];
  for (const reason of reasons) {
    for (const reconnected of [false, true]) {
      const text = Text.reason(reason, 'Lobby', reconnected);
      assert.match(text, /^[A-Z].*\.$/, reason);
      assert.doesNotMatch(text, new RegExp(`\\b${reason}\\b`), reason);
    }
  }
  assert.match(Text.reason('replaced', 'Lobby', false), /another tab or on another device/);
  assert.equal(Text.rejoinLabel('replaced'), 'Use here');
  assert.equal(Text.rejoinLabel('stale'), 'Join again');
  for (const code of ['unavailable', 'shutting-down', 'timeout', 'unauthorized', 'invalid-room', 'invalid-payload', 'internal', 'offline', 'http-500']) {
    assert.match(Text.requestError(code), /^[A-Z].*\.$/, code);
    assert.ok(!Text.requestError(code).includes(code), code);
  }
  assert.equal(Text.count(1), 'person in this room');
  assert.equal(Text.count(0), 'people in this room');
});

test('request targets: origin and absolute form parse, anything malformed is null', () => {
  assert.equal(parseRequestTarget('/api/token?user=a%20b').params.get('user'), 'a b');
  assert.equal(parseRequestTarget('http://example.com/api/config').path, '/api/config');
  assert.equal(parseRequestTarget('http://example.com').path, '/');
  for (const bad of ['//[', '//%zz', '/%', '/%C3%28', '/?a=%zz', '/?a=%FF', '*', '', 'api', '/a b', '/\u00e9', undefined]) {
    assert.equal(parseRequestTarget(bad), null, String(bad));
  }
});
