'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { io } = require('socket.io-client');
const { startRedis, TestClient } = require('./support/shared');
const { startDemo } = require('./support/demo-server');
const { issueToken } = require('../auth-token');

const MAX_HTTP_BUFFER_SIZE = 20000;

/** Resolves with the server's refusal of a handshake with `auth`, or rejects if it connects. */
function refusal(url, auth) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => {
      socket.close();
      reject(new Error('connected without a valid token'));
    });
    socket.once('connect_error', (err) => {
      socket.close();
      resolve(err.message);
    });
  });
}

describe('authentication and bad input', () => {
  let redis;
  let admin;
  let demo;
  const clients = [];

  const keys = async () => (await admin.sendCommand(['KEYS', 'room:presence:*'])).sort();
  const send = (client, ...args) => client.socket.timeout(5000).emitWithAck(...args);

  before(async () => {
    redis = await startRedis({ staleAfter: 30 });
    admin = await redis.client();
    demo = await startDemo({ redisUrl: redis.url, env: { MAX_HTTP_BUFFER_SIZE } });
  });

  after(async () => {
    for (const client of clients) client.close();
    if (demo) await demo.stop('SIGKILL');
    if (redis) await redis.stop();
  });

  it('refuses a handshake without a token or with a forged one', async () => {
    const valid = await demo.token('alice');
    const [body, signature] = valid.split('.');
    const otherUser = Buffer.from(JSON.stringify({ user: 'bob', exp: Date.now() + 60000 })).toString('base64url');
    const forged = [
      undefined,
      '',
      'garbage',
      `${otherUser}.${signature}`,
      `${body}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`,
      issueToken('another-secret', 'alice'),
      `${body}.${signature}.extra`,
    ];
    assert.equal(await refusal(demo.url, {}), 'unauthorized');
    for (const token of forged) assert.equal(await refusal(demo.url, { token }), 'unauthorized', String(token));
    assert.deepEqual(await keys(), []);
  });

  it('issues tokens only for valid user ids', async () => {
    for (const user of ['a:b', '', 'x'.repeat(129), 'a b', 'ä']) {
      const res = await fetch(`${demo.url}/api/token?user=${encodeURIComponent(user)}`);
      assert.equal(res.status, 400, user);
      assert.deepEqual(await res.json(), { error: 'invalid-user' });
    }
    assert.equal((await fetch(`${demo.url}/api/token`)).status, 400);
  });

  it('ignores a user id named in a payload', async () => {
    const alice = await demo.connect('alice');
    const mallory = await demo.connect('mallory');
    clients.push(alice, mallory);
    await alice.join('r-auth');
    const ack = await send(mallory, 'room:join', { roomId: 'r-auth', userId: 'alice' });
    assert.deepEqual(ack.users, ['alice', 'mallory']);
    assert.deepEqual(await send(mallory, 'room:leave', { roomId: 'r-auth', userId: 'alice' }), { ok: true });
    assert.deepEqual(await send(mallory, 'room:leave', { roomId: 'r-auth', userId: 'alice' }), { ok: false, error: 'not-present' });
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', 'r-auth', 'WITHSOCKETS']), ['alice', demo.held(alice)]);
    assert.deepEqual(alice.rawForceLeaves, []);
  });

  it('answers invalid rooms, wrong types and oversized fields with an error and writes nothing', async () => {
    const mallory = await demo.connect('mallory');
    clients.push(mallory);
    const before = await keys();
    const cases = [
      [['room:join', { roomId: 'room:1' }], 'invalid-room'],
      [['room:join', { roomId: '{r}' }], 'invalid-room'],
      [['room:join', { roomId: 'r*' }], 'invalid-room'],
      [['room:join', { roomId: 'x'.repeat(129) }], 'invalid-room'],
      [['room:join', { roomId: 'x'.repeat(MAX_HTTP_BUFFER_SIZE / 2) }], 'invalid-room'],
      [['room:join', { roomId: 7 }], 'invalid-room'],
      [['room:join', { roomId: null }], 'invalid-room'],
      [['room:join', 'r-ok'], 'invalid-payload'],
      [['room:join', 12], 'invalid-payload'],
      [['room:join', [{ roomId: 'r-ok' }]], 'invalid-payload'],
      [['room:heartbeat', true], 'invalid-payload'],
      [['room:leave'], 'invalid-payload'],
    ];
    for (const [args, error] of cases) {
      assert.deepEqual(await send(mallory, ...args), { ok: false, error }, JSON.stringify(args).slice(0, 60));
    }
    assert.deepEqual(await keys(), before);
    assert.equal(mallory.socket.connected, true);
  });

  it('closes the connection of a payload over maxHttpBufferSize and keeps serving', async () => {
    const big = new TestClient(demo.url, { auth: { token: await demo.token('big') }, socketOptions: { reconnection: false } });
    clients.push(big);
    await big.connected();
    const before = await keys();
    const closed = new Promise((resolve) => big.socket.once('disconnect', resolve));
    big.socket.emit('room:join', { roomId: 'r-big', padding: 'x'.repeat(MAX_HTTP_BUFFER_SIZE + 1000) });
    assert.match(await closed, /transport (close|error)/);
    assert.deepEqual(await keys(), before);
    const next = await demo.connect('next');
    clients.push(next);
    assert.equal((await next.join('r-big')).ok, true);
  });
});
