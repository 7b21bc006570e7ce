'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startRedis } = require('./support/shared');
const { startDemo } = require('./support/demo-server');

const STALE_AFTER_S = 2;
const WINDOWS = 6;
const ROOM = 'steady';

test('users who keep heartbeating are never force-left, over many stale windows', async () => {
  const redis = await startRedis({ staleAfter: STALE_AFTER_S, sweepIntervalMs: 100 });
  const demo = await startDemo({ redisUrl: redis.url, env: { PING_INTERVAL_MS: 1000, PING_TIMEOUT_MS: 1000 } });
  const clients = [];
  try {
    const admin = await redis.client();
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    for (const user of users) {
      const client = await demo.connect(user, { heartbeatIntervalMs: 500, heartbeatJitterMs: 100 });
      clients.push(client);
      assert.equal((await client.join(ROOM)).ok, true);
    }
    const silent = await demo.connect('silent', { heartbeatIntervalMs: 600000 });
    clients.push(silent);
    await silent.join(ROOM);

    const end = Date.now() + WINDOWS * STALE_AFTER_S * 1000;
    let checks = 0;
    while (Date.now() < end) {
      const live = await admin.sendCommand(['PRESENCE.LIST', ROOM]);
      for (const user of users) assert.ok(live.includes(user), `${user} missing from ${JSON.stringify(live)} after ${checks} checks`);
      checks += 1;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    assert.equal((await silent.waitForForceLeave(ROOM, 30000)).reason, 'stale', 'the sweeper ran during the test');
    for (const client of clients.slice(0, users.length)) {
      assert.deepEqual(client.rawForceLeaves, []);
      assert.deepEqual(client.presence.rooms(), [ROOM]);
    }
    await clients[0].waitForUsers(ROOM, users);
  } finally {
    for (const client of clients) client.close();
    await demo.stop('SIGKILL');
    await redis.stop();
  }
});
