'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedis, waitFor } = require('./support/shared');
const { startDemo } = require('./support/demo-server');
const { rawRequest, requestLine } = require('./support/raw-http');

const ROOM = 'steady';
const MAX_HTTP_BUFFER_SIZE = 20000;

describe('malformed and unexpected requests: a 4xx answer, the server stays up, joined users are untouched', () => {
  let redis;
  let admin;
  let demo;
  let alice;

  const get = (target, headers) => rawRequest(demo.port, requestLine('GET', target, headers));

  before(async () => {
    redis = await startRedis({ staleAfter: 30 });
    admin = await redis.client();
    demo = await startDemo({ redisUrl: redis.url, env: { MAX_HTTP_BUFFER_SIZE } });
    alice = await demo.connect('alice');
    assert.equal((await alice.join(ROOM)).ok, true);
  });

  after(async () => {
    if (alice) alice.close();
    if (demo) await demo.stop('SIGKILL');
    if (redis) await redis.stop();
  });

  it('answers 400 to request targets that cannot be parsed', async () => {
    for (const target of ['//[', '//%zz', '/%', '/a%2', '/api/token?user=%zz', '/api/token?user=%C3%28', '/\\', '/a b', '/é', '/socket.io//[']) {
      const res = await get(target);
      assert.equal(res.status, 400, `${target}: ${res.raw.slice(0, 80)}`);
    }
  });

  it('answers 4xx to malformed request lines and headers, huge headers and unknown methods', async () => {
    const cases = [
      ['GET //[ HTTP/1.1\r\n\r\n', 400],
      ['FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: x\r\n' + 'X-Big: ' + 'a'.repeat(20000) + '\r\n\r\n', 431],
      [`GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
      ['garbage\r\n\r\n', 400],
      ['\x00\x01\x02\x03\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
    ];
    for (const [request, status] of cases) {
      const res = await rawRequest(demo.port, request);
      assert.equal(res.status, status, JSON.stringify(request.slice(0, 40)));
    }
  });

  it('answers 405 with Allow to other methods, a JSON body included', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const body = '{"user": "bob",';
      const res = await rawRequest(
        demo.port,
        requestLine(method, '/api/token', `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`) + body,
      );
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, HEAD');
    }
  });

  it('serves HEAD like GET without a body, and a favicon', async () => {
    const head = await rawRequest(demo.port, requestLine('HEAD', '/'));
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 0);
    for (const icon of ['/favicon.svg', '/favicon.ico']) {
      const res = await get(icon);
      assert.equal(res.status, 200, icon);
      assert.equal(res.headers['content-type'], 'image/svg+xml');
    }
    assert.equal((await get('/nothing-here')).status, 404);
  });

  it('answers 400 to bad ids and reads a room for a page that is not in it', async () => {
    assert.equal((await get('/api/room?id=a:b')).status, 400);
    assert.equal((await get('/api/room')).status, 400);
    const res = await get(`/api/room?id=${ROOM}`);
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), {
      roomId: ROOM,
      users: ['alice'],
      members: [{ userId: 'alice', data: null }],
      count: 1,
      truncated: false,
    });
  });

  it('closes a Socket.IO connection that sends bad JSON or an unknown session, and nothing else', async () => {
    const base = `http://127.0.0.1:${demo.port}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const { sid } = JSON.parse(open.slice(1));
    const token = await demo.token('mallory');
    const post = (body, sidParam = sid) => fetch(`${base}&sid=${sidParam}`, { method: 'POST', body });
    assert.equal((await post(`40${JSON.stringify({ token })}`)).status, 200);
    assert.equal((await post('42["room:join",{"roomId":')).status, 200);
    assert.equal((await post('4{not json')).status, 200);
    assert.equal((await post('x', 'no-such-session')).status, 400);
    assert.equal((await post('x'.repeat(MAX_HTTP_BUFFER_SIZE * 2))).status >= 400, true);
    const bad = await rawRequest(demo.port, requestLine('GET', '/socket.io/?EIO=4&transport=polling&sid=%zz'));
    assert.equal(bad.status, 400);
  });

  it('logs a flood of malformed requests in a few lines, not one each', async () => {
    let log = '';
    const collect = (chunk) => (log += chunk);
    demo.process.stderr.on('data', collect);
    const lines = () => log.split('\n').filter((line) => line.includes('malformed request'));
    try {
      const floodStart = Date.now();
      await Promise.all(Array.from({ length: 200 }, () => rawRequest(demo.port, 'garbage\r\n\r\n')));
      const floodMs = Date.now() - floodStart;
      // At most one line a second, and every line of the flood was written while it lasted.
      const allowed = Math.ceil(floodMs / 1000) + 1;
      // A second after the flood's last line, the next request is logged, with the count held back.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await rawRequest(demo.port, 'garbage\r\n\r\n');
      await waitFor(() => /and \d+ more like it/.test(lines().at(-1) ?? ''), { timeoutMs: 30000, message: 'the line with the count held back' });
      assert.ok(lines().length <= allowed + 1, `${lines().length} lines for 201 requests, the flood lasting ${floodMs} ms`);
    } finally {
      demo.process.stderr.off('data', collect);
    }
  });

  it('is still up, and the joined user never noticed', async () => {
    assert.equal(demo.process.exitCode, null);
    assert.equal(alice.socket.connected, true);
    assert.deepEqual(alice.rawForceLeaves, []);
    assert.deepEqual(await alice.presence.join(ROOM).then((ack) => ack.users), ['alice']);
    assert.deepEqual(await admin.sendCommand(['PRESENCE.LIST', ROOM, 'WITHSOCKETS']), ['alice', demo.held(alice)]);
    const bob = await demo.connect('bob');
    try {
      assert.deepEqual((await bob.join(ROOM)).users, ['alice', 'bob']);
    } finally {
      bob.close();
    }
    assert.doesNotMatch(demo.output, /\n\s+at /, 'no stack trace in the log');
  });
});
