'use strict';

const { keySlot } = require('./slots');
const { eventListener, roomEventChannel, nodeDownChannel } = require('./presence-events');
const { closeClient } = require('./close-client');
const { Backoff } = require('./retry');
const { errorMessage, RepeatedWarnings } = require('./warnings');

/** The pauses before a subscription that failed is tried again: from 100 ms, doubled up to 1 s. */
const RETRY = new Backoff(100, 1000);

/**
 * @typedef {import('./topology').Subscriber} Subscriber
 * @typedef {import('./cluster-map').MasterNode} MasterNode
 * @typedef {import('redis').RedisClientType<any, any, any, any, any>} NodeClient
 * @typedef {{address: string | null, placing: Promise<void> | null, reread: boolean}} RoomState
 * @typedef {{client: NodeClient | null, connected: Promise<unknown>, rooms: Set<string>, wasReady: boolean}} Connection
 */

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
 * @implements {Subscriber}
 */
class ClusterSubscriber {
  /**
   * @param {import('./cluster-map').ClusterMap} map
   * @param {import('./topology').SubscriberOptions} options
   */
  constructor(map, { db, onEvent, onResubscribed, logger }) {
    this.map = map;
    this.db = db;
    this.onResubscribed = onResubscribed;
    /** @type {Map<string, RoomState>} rooms watched */
    this.rooms = new Map();
    /** @type {Map<string, Connection>} connections by master address */
    this.connections = new Map();
    /** @type {string | null} the address whose connection holds the node-down subscription, null while it has none */
    this.nodeDownAddress = null;
    /** @type {Promise<void> | null} */
    this.nodeDownPlacing = null;
    this.closed = false;
    /** A reconnecting client repeats its error at every attempt: logged once. */
    this.warnings = new RepeatedWarnings(logger);
    this.listener = eventListener(onEvent);
  }

  /** Subscribes to `node-down`; resolves once a master confirmed it. */
  async start() {
    this.map.onChange(() => this.#followMap());
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
    const current = state;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    /** @type {Promise<void>} */
    const late = new Promise((resolve) => {
      timer = setTimeout(() => {
        current.reread = true;
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

  /**
   * Takes the room off the connection it is subscribed on, if any.
   * @param {string} roomId
   * @param {RoomState} state
   */
  #drop(roomId, state) {
    const connection = state.address && this.connections.get(state.address);
    state.address = null;
    if (!connection) return;
    connection.rooms.delete(roomId);
    if (connection.client?.isReady) {
      connection.client.sUnsubscribe(roomEventChannel(this.db, roomId), this.listener).catch(() => {});
    }
  }

  /**
   * Subscribes the room on the master of its slot, trying again (after reading the map again)
   * until it works, the room is no longer watched, or the subscriber closes. A room subscribed
   * again (not for the first time), or whose first subscription took longer than its `watch`
   * waited, is re-read.
   * @param {string} roomId
   * @param {RoomState} state
   */
  #place(roomId, state) {
    if (state.placing) return;
    const first = state.address === null && !state.reread;
    state.placing = (async () => {
      const channel = roomEventChannel(this.db, roomId);
      const slot = keySlot(channel);
      for (let retry = 0; !this.closed && this.rooms.get(roomId) === state; retry += 1) {
        const master = this.map.masterOf(slot);
        try {
          if (!master) throw new Error(`no master for slot ${slot} in the cluster map`);
          const { connection, client } = await this.#connection(master);
          if (this.closed || this.rooms.get(roomId) !== state) return;
          await client.sSubscribe(channel, this.listener);
          if (this.closed) return;
          if (this.rooms.get(roomId) !== state) {
            // Unwatched meanwhile: the subscription just made is nobody's.
            if (!this.rooms.has(roomId)) client.sUnsubscribe(channel, this.listener).catch(() => {});
            return;
          }
          if (state.address !== master.address) this.#drop(roomId, state);
          state.address = master.address;
          connection.rooms.add(roomId);
          if (!first || state.reread) this.onResubscribed([roomId]);
          state.reread = false;
          return;
        } catch (err) {
          this.#failed(`cannot subscribe to the events of room ${roomId}: ${errorMessage(err)}`);
          await RETRY.wait(retry);
        }
      }
    })().finally(() => {
      state.placing = null;
    });
  }

  /**
   * Subscribes to node-down on a master (the first of the map), trying again until it works.
   * @param {boolean} first whether this is the first subscription, whose failure is the caller's
   * @returns {Promise<void>}
   */
  #subscribeNodeDown(first) {
    if (this.nodeDownPlacing) return this.nodeDownPlacing;
    this.nodeDownPlacing = (async () => {
      for (let retry = 0; !this.closed; retry += 1) {
        const master = this.map.masters()[0];
        try {
          if (!master) throw new Error('no master in the cluster map');
          const { client } = await this.#connection(master);
          await client.subscribe(nodeDownChannel(this.db), this.listener);
          this.nodeDownAddress = master.address;
          return;
        } catch (err) {
          // A first failure is the caller's (attachPresence rejects); later ones are tried again.
          if (first) throw err;
          this.#failed(`cannot subscribe to node-down: ${errorMessage(err)}`);
          await RETRY.wait(retry);
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
   * @param {MasterNode} master
   * @returns {Promise<{connection: Connection, client: NodeClient}>}
   */
  #connection(master) {
    if (this.closed) return Promise.reject(new Error('the subscriber is closed'));
    const connection = this.connections.get(master.address) ?? this.#open(master);
    return connection.connected.then(() => {
      const { client } = connection;
      if (!client) throw new Error(`the connection to ${master.address} was dropped`);
      return { connection, client };
    });
  }

  /**
   * Opens the pub/sub connection to `master` (a duplicate of node-redis's client of it).
   * @param {MasterNode} master
   * @returns {Connection}
   */
  #open(master) {
    /** @type {Connection} */
    const connection = { client: null, connected: Promise.resolve(), rooms: new Set(), wasReady: false };
    connection.connected = this.map.nodeClient(master).then((nodeClient) => {
      if (this.closed || this.connections.get(master.address) !== connection) {
        throw new Error(`the connection to ${master.address} was dropped`);
      }
      const client = nodeClient.duplicate();
      connection.client = client;
      client.on('error', (err) => {
        this.#failed(`pub/sub connection to ${master.address}: ${errorMessage(err)}`);
        this.map.refresh();
      });
      client.on('ready', () => this.#reconnected(connection));
      client.on('sharded-channel-moved', (channel) => this.#moved(channel));
      return client.connect();
    });
    this.connections.set(master.address, connection);
    connection.connected.catch(() => {
      if (this.connections.get(master.address) === connection) this.connections.delete(master.address);
      if (connection.client) connection.client.destroy();
    });
    return connection;
  }

  /**
   * A connection is ready: the first time, nothing to do; after a drop, node-redis subscribed
   * its channels again, but the events of the gap are lost: its rooms are placed again (the map
   * may have moved them meanwhile) and re-read. (A `node-down` of this server's node missed
   * meanwhile is found by the lease's next renewal.)
   * @param {Connection} connection
   */
  #reconnected(connection) {
    this.warnings.clear();
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

  /**
   * The shard dropped a room's subscription: its slot moved to another master.
   * @param {string} channel
   */
  #moved(channel) {
    const roomId = /^__presence@\d+__:\{(.*)\}$/.exec(channel)?.[1];
    const state = roomId === undefined ? undefined : this.rooms.get(roomId);
    if (roomId === undefined || !state) return;
    const connection = state.address && this.connections.get(state.address);
    if (connection) connection.rooms.delete(roomId);
    state.address = null;
    state.reread = true;
    this.map.refresh().then(() => this.#place(roomId, state));
  }

  /**
   * The cluster map changed: rooms whose master changed are subscribed on the new one (and
   * re-read), connections to nodes that are no longer masters are closed, and node-down moves
   * off a node that is no longer a master.
   */
  #followMap() {
    if (this.closed) return;
    const masters = new Set(this.map.masters().map((master) => master.address));
    for (const [roomId, state] of this.rooms) {
      const master = this.map.masterOf(keySlot(roomEventChannel(this.db, roomId)));
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

  /** @param {string} message */
  #failed(message) {
    if (!this.closed) this.warnings.warn(`presence: ${message}`);
  }
}

exports.ClusterSubscriber = ClusterSubscriber;
