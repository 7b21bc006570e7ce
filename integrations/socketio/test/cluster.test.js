'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedisCluster } = require('./support/redis-cluster');
const { startSocketServer } = require('./support/socket-server');
const { TestClient } = require('./support/test-client');
const { waitFor } = require('./support/wait');
const { keySlot } = require('../src/slots');
const { SCRIPT_ENGINE } = require('./support/engine');

/**
 * The integration on a Redis Cluster of 3 masters and 3 replicas (the presence module on each)
 * through a node-redis cluster client: routing by room, sharded subscriptions per room, a slot
 * moved while users heartbeat, and a master killed under load.
 */
describe('on a Redis Cluster', () => {
  let cluster;
  const servers = [];
  const clients = [];

  before(async () => {
    cluster = await startRedisCluster({ staleAfter: 10, sweepIntervalMs: 100, nodeTimeoutMs: 2000 });
  });

  after(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await server.close();
    if (cluster) await cluster.stop();
  });

  async function server(options = {}) {
    const started = await startSocketServer(cluster.urls, options);
    servers.push(started);
    return started;
  }

  async function connect(started, user, options = {}) {
    const client = new TestClient(started.url, { auth: { user }, ...options });
    clients.push(client);
    await client.connected();
    return client;
  }

  /** A room (`<prefix>-<n>`) whose slot the master on `port` owns. */
  async function roomOn(port, prefix) {
    for (let n = 0; ; n += 1) {
      const room = `${prefix}-${n}`;
      if ((await cluster.masterOf(keySlot(room))) === port) return room;
    }
  }

  /** The live users and the count of a room, read on its master now. */
  async function truth(room) {
    const admin = await cluster.admin(await cluster.masterOf(keySlot(room)));
    const [users, count] = await Promise.all([admin.sendCommand(['PRESENCE.LIST', room]), admin.sendCommand(['PRESENCE.COUNT', room])]);
    return { users, count: Number(count) };
  }

  /** Subscribers of a room's event channel on its master. */
  async function roomSubscribers(room) {
    const admin = await cluster.admin(await cluster.masterOf(keySlot(room)));
    const [, count] = await admin.sendCommand(['PUBSUB', 'SHARDNUMSUB', `__presence@0__:{${room}}`]);
    return Number(count);
  }

  it('joins, lists, counts, beats and leaves in rooms of every shard, with a lease key on every master', async () => {
    const web = await server();
    const masters = await cluster.masterPorts();
    assert.equal(masters.length, 3);
    const rooms = [];
    for (const port of masters) rooms.push(await roomOn(port, 'shard'));
    const ann = await connect(web, 'ann');
    const bob = await connect(web, 'bob');
    for (const room of rooms) {
      assert.deepEqual(await ann.join(room), {
        ok: true,
        roomId: room,
        users: ['ann'],
        members: [{ userId: 'ann', data: null }],
        count: 1,
        truncated: false,
      });
      assert.deepEqual(await bob.join(room), {
        ok: true,
        roomId: room,
        users: ['ann', 'bob'],
        members: [
          { userId: 'ann', data: null },
          { userId: 'bob', data: null },
        ],
        count: 2,
        truncated: false,
      });
      await ann.waitForUsers(room, ['ann', 'bob']);
      assert.deepEqual(await truth(room), { users: ['ann', 'bob'], count: 2 });
      assert.deepEqual(await ann.socket.emitWithAck('room:heartbeat', { roomId: room }), { ok: true });
    }
    for (const port of masters) {
      const keys = await (await cluster.admin(port)).sendCommand(['KEYS', 'presence:node:*']);
      assert.equal(keys.length, 1, `one lease key on the master at ${port}: ${keys}`);
      assert.ok(keys[0].endsWith(`}${web.presence.nodeId}`), keys[0]);
    }
    for (const room of rooms) {
      assert.deepEqual(await bob.presence.leave(room), { ok: true });
      await ann.waitForUsers(room, ['ann']);
      assert.deepEqual(await truth(room), { users: ['ann'], count: 1 });
    }
    assert.deepEqual(ann.rawForceLeaves, []);
    assert.deepEqual(bob.rawForceLeaves, []);
    ann.close();
    bob.close();
    await web.close();
    servers.splice(servers.indexOf(web), 1);
  });

  it("carries presence data in rooms of every shard: data keys beside the presences, updates through the room's sharded channel", async () => {
    const web = await server({ presenceData: (_socket, requested) => requested });
    const rooms = [];
    for (const port of await cluster.masterPorts()) rooms.push(await roomOn(port, 'data'));
    const cal = await connect(web, 'cal');
    const dee = await connect(web, 'dee');
    for (const room of rooms) {
      const ack = await cal.join(room, { data: { status: 'here' } });
      assert.deepEqual(ack.ok && ack.members, [{ userId: 'cal', data: { status: 'here' } }]);
      assert.equal((await dee.join(room)).ok, true);
      assert.deepEqual(await cal.presence.update(room, { status: 'away' }), { ok: true, data: { status: 'away' } });
      await waitFor(() => dee.lastParticipants(room)?.members.find((member) => member.userId === 'cal')?.data?.status === 'away', {
        message: `the update in ${room}`,
      });
      const admin = await cluster.admin(await cluster.masterOf(keySlot(room)));
      assert.equal(await admin.sendCommand(['GET', `room:presence-data:{${room}}:cal`]), '{"status":"away"}');
      assert.deepEqual(await cal.presence.leave(room), { ok: true });
      assert.equal(await admin.sendCommand(['EXISTS', `room:presence-data:{${room}}:cal`]), 0, 'the data key left with its presence');
    }
    assert.deepEqual(cal.rawForceLeaves, []);
    assert.deepEqual(dee.rawForceLeaves, []);
    cal.close();
    dee.close();
  });

  it("delivers a room's events once per room through its sharded subscription, which ends with the room's last local socket", async () => {
    const [a, b] = [await server(), await server()];
    const room = await roomOn((await cluster.masterPorts())[1], 'events');
    const alice = await connect(a, 'alice');
    // No heartbeat of bob's: one that reached the server before the event of the DEL below
    // would be answered not-present first (a slow event is no bug).
    const bob = await connect(b, 'bob', { heartbeatIntervalMs: 60000 });
    await alice.join(room);
    await bob.join(room);
    await alice.waitForUsers(room, ['alice', 'bob']);
    await waitFor(async () => (await roomSubscribers(room)) === 2, { message: 'one subscription per server' });
    await alice.waitForQuiet();

    const seen = alice.participants.length;
    const carol = await connect(b, 'carol');
    await carol.join(room);
    await alice.waitForUsers(room, ['alice', 'bob', 'carol']);
    await alice.waitForQuiet();
    // A late send of the room before carol's join does not count: it does not list her.
    const withCarol = alice.participants.slice(seen).filter((event) => event.users.includes('carol'));
    assert.equal(withCarol.length, 1, `one room:participants for one join: ${JSON.stringify(alice.participants.slice(seen))}`);

    const admin = await cluster.admin(await cluster.masterOf(keySlot(room)));
    assert.equal(Number(await admin.sendCommand(['DEL', `room:presence:{${room}}:bob`])), 1);
    // The module sees the raw DEL as it happens; the script engine at its sweep (server.test.js).
    assert.equal((await bob.waitForForceLeave(room)).reason, SCRIPT_ENGINE ? 'stale' : 'deleted');
    await alice.waitForUsers(room, ['alice', 'carol']);
    assert.equal(bob.rawForceLeaves.length, 1, 'one room:force-leave');
    assert.deepEqual(alice.rawForceLeaves, []);

    for (const client of [alice, carol]) assert.deepEqual(await client.presence.leave(room), { ok: true });
    await waitFor(async () => (await roomSubscribers(room)) === 0, { message: 'no subscription once no local socket is in the room' });
    for (const client of [alice, bob, carol]) client.close();
  });

  it("keeps its users while their room's slot moves to another master, subscribes there and re-reads the room", async () => {
    const web = await server();
    const other = await server();
    const [from, to] = await cluster.masterPorts();
    const room = await roomOn(from, 'moving');
    const ann = await connect(web, 'ann', { heartbeatIntervalMs: 200, heartbeatJitterMs: 50 });
    const bob = await connect(web, 'bob', { heartbeatIntervalMs: 200, heartbeatJitterMs: 50 });
    for (const client of [ann, bob]) assert.equal((await client.join(room)).ok, true);
    await ann.waitForUsers(room, ['ann', 'bob']);

    const failures = [];
    let beating = true;
    const beats = (async () => {
      while (beating) {
        const ack = await ann.socket.emitWithAck('room:heartbeat', { roomId: room });
        if (!ack.ok) failures.push(ack.error);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const pause = () => new Promise((resolve) => setTimeout(resolve, 400));
    await cluster.moveSlot(keySlot(room), to, { between: pause });
    const movedAt = Date.now();
    await pause();
    beating = false;
    await beats;
    assert.deepEqual(failures, [], 'every heartbeat succeeded while the slot moved');

    await waitFor(async () => (await roomSubscribers(room)) === 1, { message: 'the subscription on the new master' });
    await waitFor(() => ann.participants.some((event) => !event.ack && event.at >= movedAt), {
      message: 'a room:participants from the re-read after the move',
    });
    const carol = await connect(other, 'carol');
    await carol.join(room);
    await ann.waitForUsers(room, ['ann', 'bob', 'carol']);
    assert.deepEqual(await truth(room), { users: ['ann', 'bob', 'carol'], count: 3 });
    assert.deepEqual(ann.rawForceLeaves, []);
    assert.deepEqual(bob.rawForceLeaves, []);
    assert.deepEqual(
      web.warnings.filter((line) => line.includes('node lease lost')),
      [],
    );
    for (const client of [ann, bob, carol]) client.close();
  });

  it('keeps a lease key on every master: one gone where the server holds presences is a lost lease, elsewhere it is taken again', async () => {
    const web = await server({ nodeLeaseMs: 3000 });
    const [withUsers, withoutUsers] = await cluster.masterPorts();
    const room = await roomOn(withUsers, 'leased');
    const ann = await connect(web, 'ann');
    assert.equal((await ann.join(room)).ok, true);
    const leaseKey = async (port) => {
      const keys = await (await cluster.admin(port)).sendCommand(['KEYS', 'presence:node:*']);
      return keys.find((key) => key.endsWith(`}${web.presence.nodeId}`));
    };
    const lostLines = () => web.warnings.filter((line) => line.includes('node lease lost'));

    const elsewhere = await leaseKey(withoutUsers);
    assert.equal(Number(await (await cluster.admin(withoutUsers)).sendCommand(['DEL', elsewhere])), 1);
    await waitFor(async () => (await leaseKey(withoutUsers)) === elsewhere, { message: 'the lease key taken again' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.deepEqual(lostLines(), []);
    assert.deepEqual(ann.rawForceLeaves, []);

    const oldNodeId = web.presence.nodeId;
    assert.equal(Number(await (await cluster.admin(withUsers)).sendCommand(['DEL', await leaseKey(withUsers)])), 1);
    const event = await ann.waitForForceLeave(room);
    assert.ok(['reset', 'node-down'].includes(event.reason), event.reason);
    await waitFor(() => lostLines().length === 1 && web.presence.nodeId !== oldNodeId, { message: 'the lost lease logged, a fresh node' });
    assert.match(lostLines()[0], new RegExp(`went with node ${oldNodeId.replaceAll('.', '\\.')}`));
    assert.equal(ann.rawForceLeaves.length, 1, 'one room:force-leave');
    assert.deepEqual(await ann.join(room), {
      ok: true,
      roomId: room,
      users: ['ann'],
      members: [{ userId: 'ann', data: null }],
      count: 1,
      truncated: false,
    });
    for (const port of await cluster.masterPorts()) assert.ok(await leaseKey(port), `the fresh node's lease key on the master at ${port}`);
    ann.close();
  });

  /** Subscribers of the node-down channel on each running node, by port. */
  async function nodeDownSubscribers() {
    const counts = new Map();
    for (const node of cluster.running()) {
      const [, count] = await (await cluster.admin(node.port)).sendCommand(['PUBSUB', 'NUMSUB', '__presence@0__:node-down']);
      counts.set(node.port, Number(count));
    }
    return counts;
  }

  it('recovers within seconds when a master is killed under beating load: the promoted replica serves, the users stay', async (t) => {
    const web = await server();
    // The master that holds the servers' node-down subscriptions, so that they have to move too.
    const subscribers = await nodeDownSubscribers();
    const masters = await cluster.masterPorts();
    const victim = masters.reduce((best, port) => ((subscribers.get(port) ?? 0) > (subscribers.get(best) ?? 0) ? port : best));
    assert.equal(subscribers.get(victim), servers.length, `every server subscribed to node-down on one master: ${[...subscribers]}`);
    const room = await roomOn(victim, 'failover');
    const users = ['ann', 'bob', 'cat'];
    const present = [];
    for (const user of users) {
      const client = await connect(web, user, { heartbeatIntervalMs: 300, heartbeatJitterMs: 50 });
      assert.equal((await client.join(room)).ok, true);
      present.push(client);
    }
    await present[0].waitForUsers(room, users);

    const killedAt = Date.now();
    await cluster.kill(victim);
    const dan = await connect(web, 'dan');
    await waitFor(async () => (await dan.join(room)).ok, { timeoutMs: 60000, intervalMs: 200, message: 'a join on the promoted replica' });
    const recoveredMs = Date.now() - killedAt;
    assert.notEqual(await cluster.masterOf(keySlot(room)), victim, "the room's slot is served by the promoted replica");

    await present[0].waitForUsers(room, [...users, 'dan']);
    assert.deepEqual(await truth(room), { users: [...users, 'dan'], count: 4 });
    for (const client of present) {
      assert.deepEqual(await client.socket.emitWithAck('room:heartbeat', { roomId: room }), { ok: true });
      assert.deepEqual(client.rawForceLeaves, []);
    }
    assert.deepEqual(
      web.warnings.filter((line) => line.includes('node lease lost')),
      [],
    );
    await waitFor(async () => [...(await nodeDownSubscribers()).values()].reduce((sum, count) => sum + count, 0) === servers.length, {
      message: 'every server subscribed to node-down on a running master again',
    });
    t.diagnostic(`commands succeed again ${recoveredMs} ms after the kill of the master at ${victim}`);
  });
});
