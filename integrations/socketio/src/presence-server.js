'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { isValidId } = require('./ids');
const { parseRoomRequest, checkRoomId } = require('./room-request');
const { PresenceDataPolicy } = require('./presence-data');
const { PresenceCommands } = require('./presence-commands');
const { ParticipantsPublisher } = require('./participants-publisher');
const { NodeLease } = require('./node-lease');
const { createTopology } = require('./topology');
const { presenceChannel } = require('./presence-channel');
const { SocketSession } = require('./socket-session');
const { RoomResync } = require('./resync');
const { LocalPresences } = require('./local-presences');
const { RedisEvents } = require('./redis-events');
const { RoomRequests } = require('./room-requests');
const { OutageLog } = require('./outage-log');
const { errorMessage } = require('./warnings');
const { chooseEngine } = require('./engines/choose');
const { ScriptCalls } = require('./engines/script');
const { ScriptSweeper } = require('./engines/script-sweeper');

/** Keys one step of a room's reconcile scans. */
const RECONCILE_COUNT = 1000;

/**
 * @typedef {import('socket.io').Namespace} Namespace
 * @typedef {import('socket.io').Socket} Socket
 * @typedef {import('./server').JoinSuccess | import('./server').UpdateSuccess | {ok: true}} Acknowledgement what a request that succeeded acknowledges
 * @typedef {{roomId: string, data: unknown}} RoomRequest a request's room and the data it carried (undefined when none), checked
 */

/**
 * The parts of a server that its room requests and its reactions to Redis share.
 * @typedef {object} ServerParts
 * @property {import('./local-presences').LocalPresences} presences
 * @property {import('./presence-commands').PresenceCommands} commands
 * @property {import('./node-lease').NodeLease} lease
 * @property {import('./participants-publisher').ParticipantsPublisher} publisher
 * @property {import('./topology').Topology} topology
 * @property {import('./topology').Subscriber} subscriber
 * @property {import('./presence-data').PresenceDataPolicy} data
 * @property {import('./server').PresenceLogger} logger
 */

/**
 * The presence integration of one Socket.IO namespace; see `attachPresence`.
 * @template TSocket the application's type of the namespace's sockets, which `getUserId` takes
 */
class PresenceServer {
  /**
   * @param {Namespace} nsp
   * @param {import('./options').PresenceSettings<TSocket>} settings
   */
  constructor(nsp, settings) {
    this.nsp = nsp;
    this.getUserId = settings.getUserId;
    this.logger = settings.logger;
    this.topology = createTopology(settings.redis, this.logger);
    this.commands = new PresenceCommands(this.topology, { timeoutMs: settings.commandTimeoutMs, maxUsers: settings.maxUsers });
    this.subscriber = this.topology.subscriber({
      db: settings.db,
      onEvent: (event) => this.events.onEvent(event),
      onResubscribed: (rooms) => this.#reread(rooms),
      logger: this.logger,
    });
    this.presences = new LocalPresences(nsp, this.subscriber);
    this.data = new PresenceDataPolicy(settings.presenceData, settings.maxDataBytes);
    this.shards = this.topology.leaseShards(() => this.presences.roomsHeld());
    this.lease = new NodeLease({
      commands: this.commands,
      leaseMs: settings.nodeLeaseMs,
      logger: this.logger,
      onLost: (loss) => this.events.onLeaseLost(loss),
      shards: this.shards,
    });
    this.settings = settings;
    /** @type {ScriptSweeper | null} the script engine's sweep (null with the module) */
    this.sweeper = null;
    this.publisher = new ParticipantsPublisher({
      nsp,
      commands: this.commands,
      channelOf: presenceChannel,
      intervalMs: settings.participantsIntervalMs,
      logger: this.logger,
    });
    /** @type {ServerParts} */
    const parts = {
      presences: this.presences,
      commands: this.commands,
      lease: this.lease,
      publisher: this.publisher,
      topology: this.topology,
      subscriber: this.subscriber,
      data: this.data,
      logger: this.logger,
    };
    this.events = new RedisEvents(parts, { reread: (rooms) => this.#reread(rooms), closing: () => this.closing });
    this.requests = new RoomRequests(parts, settings.commandTimeoutMs);
    this.resync = new RoomResync({ read: (rooms) => this.events.readRooms(rooms), stopped: () => this.closing, logger: this.logger });
    this.started = false;
    /** @type {Promise<void> | null} */
    this.closePromise = null;
    this.outage = new OutageLog(this.logger);
    /** @type {import('./server').PresenceEngine} the engine chosen at start */
    this.engine = 'module';
    /** Whether the warning about a recovered socket was logged. */
    this.warnedRecovery = false;
    /** @param {Socket} socket */
    this.onConnection = (socket) => this.#onConnection(socket);
  }

  /** Whether `close()` was called. */
  get closing() {
    return this.closePromise !== null;
  }

  /**
   * Subscribes, takes the node's lease and starts accepting connections; rejects with a
   * {@link PresenceError} when the lease cannot be taken.
   */
  async start() {
    this.nsp.use((_socket, next) => {
      if (this.closing) next(new Error(ErrorCode.SHUTTING_DOWN));
      else if (!this.started) next(new Error(ErrorCode.UNAVAILABLE));
      else next();
    });
    try {
      await this.#chooseEngine();
    } catch (err) {
      await this.topology.close();
      throw err;
    }
    await this.subscriber.start();
    try {
      await this.lease.start();
    } catch (err) {
      await this.subscriber.close();
      await this.topology.close();
      const code = err instanceof PresenceError ? err.code : ErrorCode.INTERNAL;
      throw new PresenceError(code, `attachPresence: cannot take the lease of node ${this.lease.nodeId}: ${errorMessage(err)}`, err);
    }
    this.sweeper?.start();
    this.nsp.on('connection', this.onConnection);
    this.started = true;
  }

  /**
   * Chooses the engine (SPEC §13), logs the choice once and, for the script engine, loads its
   * library and readies its sweep; rejects with a {@link PresenceError} when the engine asked
   * for cannot run.
   */
  async #chooseEngine() {
    const { engine, ttl, staleAfter, maxDataBytes, sweepIntervalMs, db } = this.settings;
    const probeKey = this.shards.current()[0]?.key('engine') ?? 'engine';
    const choice = await chooseEngine(engine, (args) => this.commands.sendOnce(probeKey, args)).catch((err) => {
      throw err instanceof PresenceError
        ? err
        : new PresenceError(
            ErrorCode.UNAVAILABLE,
            `attachPresence: cannot tell whether Redis has the presence module: ${errorMessage(err)}`,
            err,
          );
    });
    if (choice.name === 'script') {
      if (db !== 0) {
        throw new TypeError(`attachPresence: the script engine publishes its events for database 0 only (options.db is ${db})`);
      }
      await this.shards.adoptTagsInUse().catch((err) => {
        throw new PresenceError(
          ErrorCode.UNAVAILABLE,
          `attachPresence: cannot read the shards of the script engine: ${errorMessage(err)}`,
          err,
        );
      });
      const calls = new ScriptCalls({
        send: (key, args) => this.commands.sendOnce(key, args),
        settings: { ttl, staleAfter, maxDataBytes },
        cluster: this.topology.isCluster,
        tagOf: (key) => this.shards.tagOf(key),
      });
      try {
        await calls.reload(probeKey);
      } catch (err) {
        throw new PresenceError(ErrorCode.UNAVAILABLE, `attachPresence: cannot load the script library: ${errorMessage(err)}`, err);
      }
      this.commands.engine = calls;
      this.sweeper = new ScriptSweeper({
        commands: this.commands,
        calls,
        shards: () => this.shards.current().map((shard) => shard.id),
        owner: () => this.lease.nodeId,
        intervalMs: sweepIntervalMs,
        logger: this.logger,
      });
    }
    this.engine = choice.name;
    this.logger.info?.(`presence: engine ${this.#engineName()}: ${choice.reason}`);
  }

  /** The engine and, for the script engine, how its library is called. */
  #engineName() {
    const calls = this.commands.engine;
    if (!(calls instanceof ScriptCalls)) return calls.name;
    return `${calls.name} (${calls.library.mode === 'function' ? 'FCALL' : 'EVALSHA'})`;
  }

  /**
   * Graceful shutdown: refuses new connections, joins and heartbeats (`shutting-down`), waits
   * for the operations under way, leaves every presence of this server's sockets, releases the
   * node's lease, then closes the pub/sub connection(s). Safe to call more than once. The
   * Socket.IO server and the Redis client stay open: the application closes them afterwards.
   * @returns {Promise<void>}
   */
  close() {
    if (!this.closePromise) this.closePromise = this.#shutdown();
    return this.closePromise;
  }

  async #shutdown() {
    this.nsp.off('connection', this.onConnection);
    const sessions = [...this.presences.sessions.values()];
    await Promise.all(sessions.map((session) => session.queueDrainedPromise));
    await Promise.all(sessions.map((session) => this.requests.leaveAll(session)));
    try {
      await this.lease.release();
    } catch (err) {
      this.logger.warn(
        `presence: cannot release the lease of node ${this.lease.nodeId} (it ends by itself within its ${this.lease.leaseMs} ms): ${errorMessage(err)}`,
      );
    }
    this.publisher.close();
    await this.sweeper?.close();
    await this.subscriber.close();
    await this.topology.close();
  }

  /**
   * A room as the engine sees it now (see `PresenceHandle#readRoom`).
   * @param {string} roomId
   * @returns {Promise<import('./server').RoomSnapshot>}
   */
  async readRoom(roomId) {
    checkRoomId(roomId);
    const { users, members, count, truncated } = await this.commands.readRoom(roomId);
    return { roomId, users, members, count, truncated };
  }

  /**
   * Brings a room's index in line with its keys (see `PresenceHandle#reconcile`).
   * @param {string} roomId
   * @returns {Promise<number>} the presences changed
   */
  async reconcile(roomId) {
    checkRoomId(roomId);
    const calls = this.commands.engine;
    if (!(calls instanceof ScriptCalls)) return 0;
    let changed = 0;
    let cursor = '0';
    do {
      const reply = /** @type {unknown[]} */ (await this.commands.call(roomId, calls.reconcile(roomId, cursor, RECONCILE_COUNT)));
      cursor = String(reply[0]);
      changed += Number(reply[1]);
    } while (cursor !== '0');
    return changed;
  }

  /** @param {Socket} socket */
  #onConnection(socket) {
    if (socket.recovered) this.#dropRecoveredChannels(socket);
    const userIdPromise = Promise.resolve()
      // The namespace's sockets are the ones the application typed for `getUserId`.
      .then(() => this.getUserId(/** @type {TSocket} */ (/** @type {unknown} */ (socket))))
      .then(
        (id) => (isValidId(id) ? id : null),
        (err) => {
          this.logger.warn(`presence: getUserId failed: ${errorMessage(err)}`);
          return null;
        },
      );
    const session = new SocketSession(socket, userIdPromise);
    this.presences.sessions.set(socket.id, session);
    this.#on(session, 'room:join', (request, user) => this.requests.join(session, request, user), {
      refusedWhileClosing: true,
      data: 'optional',
    });
    this.#on(session, 'room:update', (request, user) => this.requests.update(session, request, user), {
      refusedWhileClosing: true,
      data: 'required',
    });
    this.#on(session, 'room:leave', ({ roomId }, user) => this.requests.leave(session, roomId, user), {
      refusedWhileClosing: false,
      data: 'ignored',
    });
    this.#on(session, 'room:heartbeat', ({ roomId }, user) => this.requests.heartbeat(session, roomId, user), {
      refusedWhileClosing: true,
      data: 'ignored',
    });
    socket.on('disconnecting', () => {
      session.closed = true;
      this.#background(
        session.run(() => this.requests.leaveAll(session)).finally(() => this.presences.sessions.delete(socket.id)),
        `leave on disconnect of ${socket.id}`,
      );
    });
  }

  /**
   * A socket restored by connection state recovery (through an adapter `attachPresence` could
   * not recognise) comes back in the presence channels of its previous connection, whose
   * presences were removed on disconnect. It is taken out of them, so that it is a socket like
   * any new one: its client's first heartbeat gets `not-present` and `room:force-leave`.
   * @param {Socket} socket
   */
  #dropRecoveredChannels(socket) {
    for (const room of socket.rooms) {
      if (room.startsWith(presenceChannel(''))) socket.leave(room);
    }
    if (this.warnedRecovery) return;
    this.warnedRecovery = true;
    this.logger.warn(
      'presence: a socket was restored by connection state recovery, which must stay off; it was taken out of its presence channels',
    );
  }

  /**
   * Re-reads `rooms` (every room when undefined) in the background.
   * @param {string[] | undefined} rooms
   */
  #reread(rooms) {
    this.#background(this.resync.request(rooms), 're-read of rooms');
  }

  /**
   * Lets `promise` run on its own, logging a failure instead of leaving it unhandled.
   * @param {Promise<unknown>} promise
   * @param {string} what
   */
  #background(promise, what) {
    promise.catch((err) => this.logger.warn(`presence: ${what} failed: ${errorMessage(err)}`));
  }

  /**
   * Registers one `room:*` handler: validates the payload (its `data` too, unless `data` is
   * `'ignored'`), resolves the user, queues the action on the socket's queue and acknowledges
   * its result or `{ok: false, error}`. With `refusedWhileClosing`, the request fails with
   * `shutting-down` once `close()` was called.
   * @param {SocketSession} session
   * @param {string} event
   * @param {(request: RoomRequest, userId: string) => Promise<Acknowledgement>} action
   * @param {{refusedWhileClosing: boolean, data: 'optional' | 'required' | 'ignored'}} options
   */
  #on(session, event, action, { refusedWhileClosing, data }) {
    session.socket.on(event, (/** @type {unknown[]} */ ...args) => {
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? last : () => {};
      if (ack === last) args.pop();
      /** @type {RoomRequest} */
      let request;
      try {
        request = parseRoomRequest(args);
        if (data === 'required' && request.data === undefined) throw new PresenceError(ErrorCode.INVALID_DATA, 'data is missing');
        if (data === 'ignored') request.data = undefined;
        else this.data.checkRequested(request.data);
      } catch (err) {
        ack({ ok: false, error: err instanceof PresenceError ? err.code : ErrorCode.INVALID_PAYLOAD });
        return;
      }
      session
        .run(async () => {
          if (refusedWhileClosing && this.closing) throw new PresenceError(ErrorCode.SHUTTING_DOWN);
          const userId = await session.userIdPromise;
          if (userId === null) throw new PresenceError(ErrorCode.UNAUTHORIZED);
          return action(request, userId);
        })
        .then(
          (result) => {
            this.outage.answered();
            ack(result);
          },
          (err) => {
            const code = err instanceof PresenceError ? err.code : ErrorCode.INTERNAL;
            if (code === ErrorCode.UNAVAILABLE) this.outage.failed(`${event} ${request.roomId}`, err);
            else if (code === ErrorCode.INTERNAL) this.logger.warn(`presence: ${event} ${request.roomId} failed: ${errorMessage(err)}`);
            ack({ ok: false, error: code });
          },
        );
    });
  }
}

exports.PresenceServer = PresenceServer;
