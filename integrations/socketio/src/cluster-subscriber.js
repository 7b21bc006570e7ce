'use strict';

const { keySlot } = require('./cluster');
const { parsePresenceEvent, roomEventChannel, nodeDownChannel } = require('./presence-events');

/** The first pause before a subscription that failed is tried again; it doubles up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 1000;

/** How long a graceful close of a pub/sub connection may take before it is cut. */
const CLOSE_TIMEOUT_MS = 1000;

/**
 * The pub/sub side on a Redis Cluster: one connection per master (a duplicate of node-redis's
 * client of that master), subscribed with `SSUBSCRIBE` to the channel of each room this
 * server's sockets are in (`__presence@<db>__:{<room>}`, on the room's shard), and, on one
 * master, with `SUBSCRIBE` to `__presence@<db>__:node-down` (every node delivers it).
 *
 * A room's subscription follows its slot: when the shard drops it (the slot moved away), when
 * the cluster map changes (a migration ended, a replica was promoted), or when its connection
 * comes back after a drop, the room is subscribed again where the map places it and
 * `onResubscribed([room])` asks for a re-read, since pub/sub delivers at most once and the
 * events of the gap are lost. A connection that fails makes the map be read again, so that a
 * dead master is left as soon as its replica is promoted.
 */
class ClusterSubscriber {
  /**
   * @param {import('./cluster').ClusterTopology} topology
   * @param {{db: number, onEvent: (event: object) => void, onResubscribed: (rooms: string[]) => void, logger: {warn: (message: string) => unknown}}} options
   */
  constructor(topology, { db, onEvent, onResubscribed, logger }) {
    this.topology = topology;
    this.db = db;
    this.onEvent = onEvent;
    this.onResubscribed = onResubscribed;
    this.logger = logger;
    /** @type {Map<string, {address: string | null, placing: Promise<void> | null, reread: boolean}>} rooms watched */
    this.rooms = new Map();
    /** @type {Map<string, {client: any, connected: Promise<any>, rooms: Set<string>, wasReady: boolean}>} connections by master address */
    this.connections = new Map();
    /** The address whose connection holds the node-down subscription, null while it has none. */
    this.nodeDownAddress = null;
    this.nodeDownPlacing = null;
    this.closed = false;
    /** The error last logged: a reconnecting client repeats it at every attempt. */
    this.lastError = null;
    this.listener = (message, channel) => this.#handle(channel, message);
  }

  /** Subscribes to `node-down`; resolves once a master confirmed it. */
  async start() {
    this.topology.onChange(() => this.#followMap());
    await this.#subscribeNodeDown(true);
  }

  /**
   * Subscribes to the events of `roomId` (if not yet), and resolves once a shard confirmed it,
   * or after `timeoutMs` (the subscription goes on trying; the room is re-read once it is in
   * place). Never rejects.
   * @param {string} roomId
   * @param {number} timeoutMs
   * @returns {Promise<void>}
   */
  watch(roomId, timeoutMs) {
    let state = this.rooms.get(roomId);
    if (!state) {
      state = { address: null, placing: null, reread: false };
      this.rooms.set(roomId, state);
      this.#place(roomId, state);
    }
    if (!state.placing) return Promise.resolve();
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => {
        state.reread = true;
        resolve();
      }, timeoutMs);
    });
    return Promise.race([state.placing, late]).finally(() => clearTimeout(timer));
  }

  /**
   * Unsubscribes from the events of `roomId` (its last local socket left).
   * @param {string} roomId
   */
  unwatch(roomId) {
    const state = this.rooms.get(roomId);
    if (!state) return;
    this.rooms.delete(roomId);
    this.#drop(roomId, state);
  }

  /** Closes every connection (at once when one is not connected). */
  async close() {
    this.closed = true;
    const connections = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(connections.map((connection) => closeClient(connection.client)));
  }

  /** Takes the room off the connection it is subscribed on, if any. */
  #drop(roomId, state) {
    const connection = state.address && this.connections.get(state.address);
    state.address = null;
    if (!connection) return;
    connection.rooms.delete(roomId);
    if (connection.client.isReady) {
      connection.client.sUnsubscribe(roomEventChannel(this.db, roomId), this.listener).catch(() => {});
    }
  }

  /**
   * Subscribes the room on the master of its slot, trying again (after reading the map again)
   * until it works, the room is no longer watched, or the subscriber closes. A room subscribed
   * again (not for the first time), or whose first subscription took longer than its `watch`
   * waited, is re-read.
   */
  #place(roomId, state) {
    if (state.placing) return;
    const first = state.address === null && !state.reread;
    state.placing = (async () => {
      const channel = roomEventChannel(this.db, roomId);
      const slot = keySlot(channel);
      for (let retry = 0; !this.closed && this.rooms.get(roomId) === state; retry += 1) {
        const master = this.topology.masterOf(slot);
        try {
          if (!master) throw new Error(`no master for slot ${slot} in the cluster map`);
          const connection = await this.#connection(master);
          if (this.closed || this.rooms.get(roomId) !== state) return;
          await connection.client.sSubscribe(channel, this.listener);
          if (this.closed) return;
          if (this.rooms.get(roomId) !== state) {
            // Unwatched meanwhile: the subscription just made is nobody's.
            if (!this.rooms.has(roomId)) connection.client.sUnsubscribe(channel, this.listener).catch(() => {});
            return;
          }
          if (state.address !== master.address) this.#drop(roomId, state);
          state.address = master.address;
          connection.rooms.add(roomId);
          if (!first || state.reread) this.onResubscribed([roomId]);
          state.reread = false;
          return;
        } catch (err) {
          this.#failed(`cannot subscribe to the events of room ${roomId}: ${err && err.message}`);
          await pause(retry);
        }
      }
    })().finally(() => {
      state.placing = null;
    });
  }

  /** Subscribes to node-down on a master (the first of the map), trying again until it works. */
  #subscribeNodeDown(first) {
    if (this.nodeDownPlacing) return this.nodeDownPlacing;
    this.nodeDownPlacing = (async () => {
      for (let retry = 0; !this.closed; retry += 1) {
        const master = this.topology.masters()[0];
        try {
          if (!master) throw new Error('no master in the cluster map');
          const connection = await this.#connection(master);
          await connection.client.subscribe(nodeDownChannel(this.db), this.listener);
          this.nodeDownAddress = master.address;
          return;
        } catch (err) {
          // A first failure is the caller's (attachPresence rejects); later ones are tried again.
          if (first) throw err;
          this.#failed(`cannot subscribe to node-down: ${err && err.message}`);
          await pause(retry);
        }
      }
    })().finally(() => {
      this.nodeDownPlacing = null;
    });
    return this.nodeDownPlacing;
  }

  /**
   * The pub/sub connection to `master`, opened (and connected) on first use. A connection
   * dropped meanwhile (the subscriber closed, the node left the masters) is never opened.
   */
  #connection(master) {
    if (this.closed) return Promise.reject(new Error('the subscriber is closed'));
    let connection = this.connections.get(master.address);
    if (!connection) {
      const connected = this.topology.nodeClient(master).then((nodeClient) => {
        if (this.closed || this.connections.get(master.address) !== connection)
          throw new Error(`the connection to ${master.address} was dropped`);
        const client = nodeClient.duplicate();
        connection.client = client;
        client.on('error', (err) => {
          this.#failed(`pub/sub connection to ${master.address}: ${err && err.message}`);
          this.topology.refresh();
        });
        client.on('ready', () => this.#reconnected(connection));
        client.on('sharded-channel-moved', (channel) => this.#moved(channel));
        return client.connect();
      });
      connection = { client: null, connected, rooms: new Set(), wasReady: false };
      this.connections.set(master.address, connection);
      connected.catch(() => {
        if (this.connections.get(master.address) === connection) this.connections.delete(master.address);
        if (connection.client) connection.client.destroy();
      });
    }
    return connection.connected.then(() => connection);
  }

  /**
   * A connection is ready: the first time, nothing to do; after a drop, node-redis subscribed
   * its channels again, but the events of the gap are lost: its rooms are placed again (the map
   * may have moved them meanwhile) and re-read. (A `node-down` of this server's node missed
   * meanwhile is found by the lease's next renewal.)
   */
  #reconnected(connection) {
    this.lastError = null;
    if (!connection.wasReady) {
      connection.wasReady = true;
      return;
    }
    for (const roomId of [...connection.rooms]) {
      const state = this.rooms.get(roomId);
      if (!state) continue;
      connection.rooms.delete(roomId);
      state.address = null;
      state.reread = true;
      this.#place(roomId, state);
    }
  }

  /** The shard dropped a room's subscription: its slot moved to another master. */
  #moved(channel) {
    const roomId = /^__presence@\d+__:\{(.*)\}$/.exec(channel)?.[1];
    const state = roomId !== undefined && this.rooms.get(roomId);
    if (!state) return;
    const connection = state.address && this.connections.get(state.address);
    if (connection) connection.rooms.delete(roomId);
    state.address = null;
    state.reread = true;
    this.topology.refresh().then(() => this.#place(roomId, state));
  }

  /**
   * The cluster map changed: rooms whose master changed are subscribed on the new one (and
   * re-read), connections to nodes that are no longer masters are closed, and node-down moves
   * off a node that is no longer a master.
   */
  #followMap() {
    if (this.closed) return;
    const masters = new Set(this.topology.masters().map((master) => master.address));
    for (const [roomId, state] of this.rooms) {
      const master = this.topology.masterOf(keySlot(roomEventChannel(this.db, roomId)));
      if (state.address !== null && master && state.address === master.address) continue;
      state.reread = true;
      this.#place(roomId, state);
    }
    for (const [address, connection] of this.connections) {
      if (masters.has(address)) continue;
      this.connections.delete(address);
      for (const roomId of connection.rooms) {
        const state = this.rooms.get(roomId);
        if (state && state.address === address) state.address = null;
      }
      if (connection.client) connection.client.destroy();
    }
    if (this.nodeDownAddress !== null && !masters.has(this.nodeDownAddress)) {
      this.nodeDownAddress = null;
      this.#subscribeNodeDown(false);
    }
  }

  #failed(message) {
    if (message === this.lastError || this.closed) return;
    this.lastError = message;
    this.logger.warn(`presence: ${message}`);
  }

  #handle(channel, message) {
    const event = parsePresenceEvent(channel, message);
    if (event) this.onEvent(event);
  }
}

/** Waits before attempt `retry + 1` of a subscription. */
function pause(retry) {
  return new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** retry)));
}

/** Closes a pub/sub client gracefully when it is connected, else at once. */
async function closeClient(client) {
  if (!client || !client.isOpen) return;
  if (!client.isReady) {
    client.destroy();
    return;
  }
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
  });
  await Promise.race([client.close().catch(() => {}), deadline]);
  clearTimeout(timer);
  if (client.isOpen) client.destroy();
}

module.exports = { ClusterSubscriber };
