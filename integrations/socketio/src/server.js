'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { isValidId, socketIdOf, nodeOf } = require('./ids');
const { parseRoomRequest } = require('./room-request');
const { PresenceCommands, NoLeaseError } = require('./presence-commands');
const { PresenceSubscriber } = require('./presence-subscriber');
const { ClusterSubscriber } = require('./cluster-subscriber');
const { ParticipantsPublisher } = require('./participants-publisher');
const { NodeLease, ClusterLeaseShards } = require('./node-lease');
const { isClusterClient, keySlot, ClusterTopology } = require('./cluster');
const { OptionChecks } = require('./options');

/** Delay before re-reading the rooms again when Redis could not answer. */
const RESYNC_RETRY_MS = 500;

/**
 * Attempts of one join: a second one when the node's lease was lost while the first was under
 * way (its presence went with the node), through the fresh node. On a cluster one more: a
 * first `NOLEASE` may come from a master new to this node, which the lease is renewed on first.
 */
const JOIN_ATTEMPTS = 2;
const CLUSTER_JOIN_ATTEMPTS = 3;

/**
 * The Socket.IO room that holds this server's sockets present in a presence room. Handy for
 * an application that wants to broadcast its own events (chat, …) to the same audience.
 * @param {string} roomId
 * @returns {string}
 */
function presenceChannel(roomId) {
  return `presence:${roomId}`;
}

/** What this server knows about one of its connected sockets. */
class SocketSession {
  /**
   * @param {import('socket.io').Socket} socket
   * @param {Promise<string | null>} userIdPromise the handshake's user id, null when not authenticated
   */
  constructor(socket, userIdPromise) {
    this.socket = socket;
    this.userIdPromise = userIdPromise;
    /**
     * Rooms this socket joined and still holds: roomId → {roomId, userId, holder, confirmedSeq},
     * `holder` being the node-qualified socket its presence was written with.
     */
    this.memberships = new Map();
    /** Rooms whose JOIN or LEAVE failed without a reply, Redis may hold a presence there: roomId → holder. */
    this.uncertain = new Map();
    /** Rooms that got their one `room:force-leave` since this socket's last join of them. */
    this.forceLeft = new Set();
    this.closed = false;
    /** Settles once every task queued so far has settled; never rejects. */
    this.queueDrainedPromise = Promise.resolve();
  }

  /**
   * Runs `task` after every task queued before it, so that the joins, leaves, heartbeats and
   * the disconnect of one socket never interleave.
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  run(task) {
    const resultPromise = this.queueDrainedPromise.then(task);
    this.queueDrainedPromise = resultPromise.catch(() => {});
    return resultPromise;
  }
}

/** The presence integration of one Socket.IO namespace; see {@link attachPresence}. */
class PresenceServer {
  constructor(nsp, options) {
    this.nsp = nsp;
    this.getUserId = options.getUserId;
    this.logger = options.logger;
    this.commandTimeoutMs = options.commandTimeoutMs;
    /** The cluster map of a cluster client, null for a client of one server. */
    this.topology = isClusterClient(options.redis) ? new ClusterTopology(options.redis, this.logger) : null;
    this.commands = new PresenceCommands(options.redis, {
      timeoutMs: options.commandTimeoutMs,
      maxUsers: options.maxUsers,
      topology: this.topology,
    });
    this.lease = new NodeLease({
      commands: this.commands,
      leaseMs: options.nodeLeaseMs,
      logger: this.logger,
      onLost: (loss) => this.#onLeaseLost(loss),
      ...(this.topology && {
        shards: new ClusterLeaseShards(this.topology),
        holdsPresences: (address) => this.#holdsPresencesOn(address),
      }),
    });
    this.publisher = new ParticipantsPublisher({
      nsp,
      commands: this.commands,
      channelOf: presenceChannel,
      intervalMs: options.participantsIntervalMs,
      logger: this.logger,
    });
    const subscriberOptions = {
      db: options.db,
      onEvent: (event) => this.#onEvent(event),
      onResubscribed: (rooms) => this.#background(this.#resync(rooms), 're-read of rooms'),
      logger: this.logger,
    };
    this.subscriber = this.topology
      ? new ClusterSubscriber(this.topology, subscriberOptions)
      : new PresenceSubscriber(options.redis, subscriberOptions);
    /** @type {Map<string, SocketSession>} this server's connected sockets, by socket id */
    this.sessions = new Map();
    /**
     * roomId → the joins under way there. An event that arrives while a join waits for its
     * reply may be missed by that socket (not yet in the room's channel, and not in the state
     * its acknowledgement read), so the room is sent again once the join is done.
     * @type {Map<string, Set<{holder: string | null, missed: boolean}>>}
     */
    this.joinsUnderWay = new Map();
    this.seq = 0;
    this.started = false;
    this.closePromise = null;
    this.resyncing = false;
    /** The rooms to re-read next: null for none, `all`, or a set of rooms. */
    this.resyncPending = null;
    /** When requests started failing with `unavailable`; null while Redis answers. */
    this.unavailableSince = null;
    /** Whether the warning about a recovered socket was logged. */
    this.warnedRecovery = false;
    this.onConnection = (socket) => this.#onConnection(socket);
  }

  async start() {
    this.nsp.use((socket, next) => {
      if (this.closePromise) next(new Error(ErrorCode.SHUTTING_DOWN));
      else if (!this.started) next(new Error(ErrorCode.UNAVAILABLE));
      else next();
    });
    await this.subscriber.start();
    try {
      await this.lease.start();
    } catch (err) {
      await this.subscriber.close();
      if (this.topology) await this.topology.close();
      throw new PresenceError(err.code, `attachPresence: cannot take the lease of node ${this.lease.nodeId}: ${err.message}`, err);
    }
    this.nsp.on('connection', this.onConnection);
    this.started = true;
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
    const sessions = [...this.sessions.values()];
    await Promise.all(sessions.map((session) => session.queueDrainedPromise));
    await Promise.all(sessions.map((session) => this.#leaveAll(session)));
    try {
      await this.lease.release();
    } catch (err) {
      this.logger.warn(
        `presence: cannot release the lease of node ${this.lease.nodeId} (it ends by itself within its ${this.lease.leaseMs} ms): ${err.message}`,
      );
    }
    this.publisher.close();
    await this.subscriber.close();
    if (this.topology) await this.topology.close();
  }

  #onConnection(socket) {
    if (socket.recovered) this.#dropRecoveredChannels(socket);
    const userIdPromise = Promise.resolve()
      .then(() => this.getUserId(socket))
      .then(
        (id) => (isValidId(id) ? id : null),
        (err) => {
          this.logger.warn(`presence: getUserId failed: ${err && err.message}`);
          return null;
        },
      );
    const session = new SocketSession(socket, userIdPromise);
    this.sessions.set(socket.id, session);
    this.#on(session, 'room:join', (roomId, user) => this.#join(session, roomId, user), { refusedWhileClosing: true });
    this.#on(session, 'room:leave', (roomId, user) => this.#leave(session, roomId, user), { refusedWhileClosing: false });
    this.#on(session, 'room:heartbeat', (roomId, user) => this.#heartbeat(session, roomId, user), { refusedWhileClosing: true });
    socket.on('disconnecting', () => {
      session.closed = true;
      this.#background(
        session.run(() => this.#leaveAll(session)).finally(() => this.sessions.delete(socket.id)),
        `leave on disconnect of ${socket.id}`,
      );
    });
  }

  /**
   * A socket restored by connection state recovery (through an adapter `attachPresence` could
   * not recognise) comes back in the presence channels of its previous connection, whose
   * presences were removed on disconnect. It is taken out of them, so that it is a socket like
   * any new one: its client's first heartbeat gets `not-present` and `room:force-leave`.
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

  /** Lets `promise` run on its own, logging a failure instead of leaving it unhandled. */
  #background(promise, what) {
    promise.catch((err) => this.logger.warn(`presence: ${what} failed: ${err && err.message}`));
  }

  /**
   * Registers one `room:*` handler: validates the payload, resolves the user, queues the
   * action on the socket's queue and acknowledges its result or `{ok: false, error}`. With
   * `refusedWhileClosing`, the request fails with `shutting-down` once `close()` was called.
   * @param {SocketSession} session
   * @param {string} event
   * @param {(roomId: string, userId: string) => Promise<object>} action
   * @param {{refusedWhileClosing: boolean}} options
   */
  #on(session, event, action, { refusedWhileClosing }) {
    session.socket.on(event, (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : () => {};
      let roomId;
      try {
        roomId = parseRoomRequest(args);
      } catch (err) {
        ack({ ok: false, error: err.code });
        return;
      }
      session
        .run(async () => {
          if (refusedWhileClosing && this.closePromise) throw new PresenceError(ErrorCode.SHUTTING_DOWN);
          const userId = await session.userIdPromise;
          if (userId === null) throw new PresenceError(ErrorCode.UNAUTHORIZED);
          return action(roomId, userId);
        })
        .then(
          (result) => {
            this.#redisAnswered();
            ack(result);
          },
          (err) => {
            const code = err instanceof PresenceError ? err.code : ErrorCode.INTERNAL;
            if (code === ErrorCode.UNAVAILABLE) this.#redisUnavailable(`${event} ${roomId}`, err);
            else if (code === ErrorCode.INTERNAL) this.logger.warn(`presence: ${event} ${roomId} failed: ${err.message}`);
            ack({ ok: false, error: code });
          },
        );
    });
  }

  /**
   * Logs the first request that failed because Redis could not answer; the others of the same
   * outage (every heartbeat of every socket) would only repeat it.
   */
  #redisUnavailable(what, err) {
    if (this.unavailableSince !== null) return;
    this.unavailableSince = Date.now();
    this.logger.warn(`presence: ${what} failed: ${err.message} (requests fail with unavailable until Redis answers again)`);
  }

  #redisAnswered() {
    if (this.unavailableSince === null) return;
    this.logger.warn(`presence: Redis answers again, after ${Date.now() - this.unavailableSince} ms of failed requests`);
    this.unavailableSince = null;
  }

  /**
   * Joins through the node held now (waiting for it while its lease is being taken again).
   * When that node's lease turns out lost, by a `NOLEASE` answer or while the join was under
   * way (its presence went with the node), the join is tried once more through the fresh node.
   */
  async #join(session, roomId, userId) {
    const { socket } = session;
    if (session.closed) throw new PresenceError(ErrorCode.NOT_PRESENT, 'socket disconnected');
    const underWay = { holder: null, missed: false };
    if (!this.joinsUnderWay.has(roomId)) this.joinsUnderWay.set(roomId, new Set());
    this.joinsUnderWay.get(roomId).add(underWay);
    const attempts = this.topology ? CLUSTER_JOIN_ATTEMPTS : JOIN_ATTEMPTS;
    let room;
    let holder;
    try {
      await this.subscriber.watch(roomId, this.commandTimeoutMs);
      let renewed = !this.topology;
      for (let attempt = 1; ; attempt += 1) {
        const nodeId = await this.lease.ready(this.commandTimeoutMs);
        holder = `${nodeId}/${socket.id}`;
        underWay.holder = holder;
        session.uncertain.set(roomId, holder);
        try {
          room = await this.commands.join(roomId, userId, holder);
        } catch (err) {
          const noLease = err instanceof NoLeaseError;
          if (noLease || err.code === ErrorCode.INTERNAL) session.uncertain.delete(roomId);
          if (!noLease || attempt === attempts) throw err;
          if (renewed) {
            this.lease.lost(nodeId, 'a join was refused with NOLEASE');
          } else {
            renewed = true;
            await this.lease.settle();
          }
          continue;
        }
        // From here to the membership below nothing waits, so a loss of the lease cannot slip in between.
        if (this.lease.nodeId === nodeId) break;
        if (attempt === attempts) throw new PresenceError(ErrorCode.UNAVAILABLE, `the lease of node ${nodeId} was lost during the join`);
      }
    } catch (err) {
      this.#finishJoin(roomId, underWay);
      this.#unwatchIfUnused(roomId);
      throw err;
    }
    this.#finishJoin(roomId, underWay);
    session.uncertain.delete(roomId);
    const membership = session.memberships.get(roomId) ?? { roomId, userId, holder, confirmedSeq: 0 };
    membership.holder = holder;
    membership.confirmedSeq = ++this.seq;
    session.memberships.set(roomId, membership);
    session.forceLeft.delete(roomId);
    if (!session.closed) {
      socket.join(presenceChannel(roomId));
      if (underWay.missed) this.publisher.schedule(roomId);
    } else {
      this.#unwatchIfUnused(roomId);
    }
    return { ok: true, roomId, users: room.users, count: room.count, truncated: room.truncated };
  }

  #finishJoin(roomId, underWay) {
    const joins = this.joinsUnderWay.get(roomId);
    joins.delete(underWay);
    if (joins.size === 0) this.joinsUnderWay.delete(roomId);
  }

  /**
   * Stops following the events of a room once none of this server's sockets is in it and no
   * join of it is under way (on a cluster, its sharded subscription ends).
   */
  #unwatchIfUnused(roomId) {
    if (this.joinsUnderWay.has(roomId)) return;
    const sockets = this.nsp.adapter.rooms.get(presenceChannel(roomId));
    if (sockets && sockets.size > 0) return;
    this.subscriber.unwatch(roomId);
  }

  /** Whether a socket of this server holds (or may hold) a presence in a room of the master at `address`. */
  #holdsPresencesOn(address) {
    const onMaster = (roomId) => this.topology.masterOf(keySlot(roomId))?.address === address;
    for (const session of this.sessions.values()) {
      for (const roomId of session.memberships.keys()) if (onMaster(roomId)) return true;
      for (const roomId of session.uncertain.keys()) if (onMaster(roomId)) return true;
    }
    for (const roomId of this.joinsUnderWay.keys()) if (onMaster(roomId)) return true;
    return false;
  }

  async #leave(session, roomId, userId) {
    const holder = session.memberships.get(roomId)?.holder ?? session.uncertain.get(roomId);
    if (holder === undefined) throw new PresenceError(ErrorCode.NOT_PRESENT);
    session.memberships.delete(roomId);
    session.uncertain.set(roomId, holder);
    session.socket.leave(presenceChannel(roomId));
    this.#unwatchIfUnused(roomId);
    await this.commands.leave(roomId, userId, holder);
    session.uncertain.delete(roomId);
    return { ok: true };
  }

  async #heartbeat(session, roomId, userId) {
    const membership = session.memberships.get(roomId);
    if (!membership) {
      if (!session.forceLeft.has(roomId)) this.#sendForceLeave(session, roomId, 'not-present');
      throw new PresenceError(ErrorCode.NOT_PRESENT);
    }
    if (await this.commands.beat(roomId, userId, membership.holder)) return { ok: true };
    // If the node's lease ended, that is why: the loss is handled first, with its own reason.
    await this.lease.settle();
    this.#forceLeave(session, membership, 'not-present');
    throw new PresenceError(ErrorCode.NOT_PRESENT);
  }

  /** Leaves every presence the socket may hold (disconnect and shutdown). */
  async #leaveAll(session) {
    const rooms = new Map(session.uncertain);
    for (const membership of session.memberships.values()) rooms.set(membership.roomId, membership.holder);
    const userId = await session.userIdPromise;
    session.memberships.clear();
    session.uncertain.clear();
    if (userId === null) return;
    const results = await Promise.allSettled(
      [...rooms].map(([roomId, holder]) => {
        session.socket.leave(presenceChannel(roomId));
        this.#unwatchIfUnused(roomId);
        return this.commands.leave(roomId, userId, holder);
      }),
    );
    const failed = results.filter((result) => result.status === 'rejected');
    if (failed.length > 0) {
      this.logger.warn(
        `presence: ${failed.length} leave(s) of socket ${session.socket.id} failed (the TTL rule will remove them): ${failed[0].reason.message}`,
      );
    }
  }

  /** Ends a membership and tells the socket, unless that membership already ended. */
  #forceLeave(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    session.memberships.delete(membership.roomId);
    session.socket.leave(presenceChannel(membership.roomId));
    this.#unwatchIfUnused(membership.roomId);
    this.#sendForceLeave(session, membership.roomId, reason);
  }

  #sendForceLeave(session, roomId, reason) {
    session.forceLeft.add(roomId);
    session.socket.emit('room:force-leave', { roomId, reason });
  }

  /**
   * The node's lease was found lost: every presence written through the old node is gone (the
   * lease released the old node, so that none comes back). Its sockets are force-left, with
   * reason `node-down` when the lease expired, `reset` when Redis lost it while it was renewed
   * on time (as for any presence Redis lost), and the loss is logged in one line.
   */
  #onLeaseLost({ oldNodeId, nodeId, why, expired }) {
    const reason = expired ? 'node-down' : 'reset';
    let count = 0;
    for (const session of this.sessions.values()) {
      for (const membership of [...session.memberships.values()]) {
        if (nodeOf(membership.holder) !== oldNodeId) continue;
        this.#forceLeave(session, membership, reason);
        count += 1;
      }
    }
    this.logger.warn(
      `presence: node lease lost: ${why}; the ${count} presence(s) of this server's sockets went with node ${oldNodeId} and were force-left (${reason}); continuing as node ${nodeId}`,
    );
  }

  #onEvent(event) {
    if (event.type === 'reset') {
      this.#background(this.#resync(event.room === undefined ? undefined : [event.room]), 're-read of rooms');
      return;
    }
    if (event.type === 'node-down') {
      // Another node's presences each have their own force-leave; this node's means a lost
      // lease when it took presences with it (a shard of a cluster where this server held
      // none may announce the end of an old lease key).
      if (!this.closePromise && event.presences > 0) this.lease.lost(event.node, 'Redis announced node-down for it');
      return;
    }
    this.publisher.schedule(event.room);
    for (const join of this.joinsUnderWay.get(event.room) ?? []) {
      if (event.type !== 'join' || event.socket !== join.holder) join.missed = true;
    }
    if (event.type === 'join') return;
    const session = this.sessions.get(socketIdOf(event.socket));
    const membership = session && session.memberships.get(event.room);
    if (!membership || membership.userId !== event.user || membership.holder !== event.socket) return;
    const reason = event.type === 'leave' ? 'deleted' : event.reason;
    this.#background(
      session.run(() => this.#confirmLoss(session, membership, reason)),
      `check of ${event.socket} in ${event.room}`,
    );
  }

  /**
   * An event says that a local socket lost its presence. Pub/sub and command replies travel
   * on different connections, so the event may be older than a join the socket made since:
   * the socket is force-left only if Redis confirms it is not present (a BEAT answering 0).
   */
  async #confirmLoss(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    let present;
    try {
      present = await this.commands.beat(membership.roomId, membership.userId, membership.holder);
    } catch (err) {
      this.logger.warn(`presence: cannot check socket ${session.socket.id} in room ${membership.roomId}: ${err.message}`);
      return;
    }
    if (!present) this.#forceLeave(session, membership, reason);
  }

  /**
   * After the pub/sub connection came back, or on a `reset` event: re-reads the rooms this
   * server's sockets are in (`rooms`, or every room when undefined), force-leaves (reason
   * `reset`) the sockets whose presence is gone, and sends fresh participant lists. Calls made
   * while a re-read is under way are merged into the next one.
   * @param {string[]} [rooms]
   */
  async #resync(rooms) {
    if (rooms === undefined) this.resyncPending = 'all';
    else if (this.resyncPending !== 'all') this.resyncPending = new Set([...(this.resyncPending ?? []), ...rooms]);
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      while (this.resyncPending && !this.closePromise) {
        const which = this.resyncPending;
        this.resyncPending = null;
        try {
          await this.#resyncOnce(which);
        } catch (err) {
          this.logger.warn(`presence: cannot re-read rooms, retrying: ${err.message}`);
          await new Promise((resolve) => setTimeout(resolve, RESYNC_RETRY_MS));
          if (which === 'all' || this.resyncPending === 'all') this.resyncPending = 'all';
          else this.resyncPending = new Set([...(this.resyncPending ?? []), ...which]);
        }
      }
    } finally {
      this.resyncing = false;
    }
  }

  /** @param {'all' | Set<string>} which the rooms to re-read */
  async #resyncOnce(which) {
    const horizon = this.seq;
    /** @type {Map<string, Array<{session: SocketSession, membership: object}>>} */
    const rooms = new Map();
    for (const session of this.sessions.values()) {
      for (const membership of session.memberships.values()) {
        if (membership.confirmedSeq > horizon || (which !== 'all' && !which.has(membership.roomId))) continue;
        if (!rooms.has(membership.roomId)) rooms.set(membership.roomId, []);
        rooms.get(membership.roomId).push({ session, membership });
      }
    }
    for (const [roomId, entries] of rooms) {
      const live = new Set((await this.commands.listWithSockets(roomId)).map(([user, socket]) => `${user} ${socket}`));
      for (const { session, membership } of entries) {
        if (membership.confirmedSeq <= horizon && !live.has(`${membership.userId} ${membership.holder}`)) {
          this.#forceLeave(session, membership, 'reset');
        }
      }
      this.publisher.schedule(roomId);
    }
  }
}

/**
 * Tells whether a namespace's adapter is Socket.IO's `SessionAwareAdapter` (or extends it): the
 * adapter a server with connection state recovery gets unless the application gives its own.
 * Socket.IO has no public way to read a server's options; adapters of other packages that
 * restore sessions are caught per socket instead (see `socket.recovered` in the connection
 * handler). The class is recognised by name, since the application's copy of socket.io-adapter
 * may not be the one this package would load.
 * @param {object} adapter
 * @returns {boolean}
 */
function restoresSessions(adapter) {
  for (let proto = Object.getPrototypeOf(adapter); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor && proto.constructor.name === 'SessionAwareAdapter') return true;
  }
  return false;
}

/**
 * Attaches room presence to a Socket.IO server. Resolves once the pub/sub subscription is
 * confirmed and the handlers are in place: await it before the HTTP server listens
 * (connections arriving earlier are refused with `unavailable`).
 *
 * Handles `room:join`, `room:leave` and `room:heartbeat` (each `{roomId}` with an
 * acknowledgement), leaves on disconnect, and sends `room:participants` and `room:force-leave`
 * to this server's own sockets only.
 *
 * @param {import('socket.io').Server} io
 * @param {object} options
 * @param {any} options.redis a connected node-redis v5 client (a duplicate of it is opened for
 *   pub/sub), or cluster client (`createCluster`: commands go to each room's shard, events come
 *   through a sharded subscription per room, the node's lease is a key on every master)
 * @param {(socket: import('socket.io').Socket) => string | null | Promise<string | null>} options.getUserId
 *   the authenticated user id of a socket (from its handshake); anything but a valid id makes
 *   that socket's requests fail with `unauthorized`
 * @param {string} [options.namespace='/']
 * @param {number} [options.db] the database the client uses (default: the client's, else 0)
 * @param {number} [options.participantsIntervalMs=250] at most one `room:participants` per room per interval
 * @param {number} [options.maxUsers=200] longest `users` list sent; `count` is always exact
 * @param {number} [options.commandTimeoutMs=2000] deadline of each Redis call, then `unavailable`
 * @param {number} [options.nodeLeaseMs=10000] the node's lease, renewed about every third of it:
 *   when this process dies, its presences end within it
 * @param {Pick<Console, 'warn'>} [options.logger=console]
 * @returns {Promise<{close: () => Promise<void>, readonly nodeId: string}>}
 */
async function attachPresence(io, options = {}) {
  const check = new OptionChecks('attachPresence');
  const redis = check.withMethods(options.redis, 'redis', {
    methods: ['sendCommand', 'duplicate'],
    what: 'a connected node-redis client',
  });
  const settings = {
    redis,
    getUserId: check.callback(options.getUserId, 'getUserId'),
    namespace: check.string(options.namespace ?? '/', 'namespace'),
    db: check.positiveInteger(options.db ?? (redis.options && redis.options.database) ?? 0, 'db', { allowZero: true }),
    participantsIntervalMs: check.milliseconds(options.participantsIntervalMs ?? 250, 'participantsIntervalMs', { allowZero: true }),
    maxUsers: check.positiveInteger(options.maxUsers ?? 200, 'maxUsers'),
    commandTimeoutMs: check.milliseconds(options.commandTimeoutMs ?? 2000, 'commandTimeoutMs'),
    nodeLeaseMs: check.leaseMilliseconds(options.nodeLeaseMs ?? 10000, 'nodeLeaseMs'),
    logger: check.withMethods(options.logger ?? console, 'logger', { methods: ['warn'], what: 'an object with a warn(message) method' }),
  };
  const nsp = io.of(settings.namespace);
  if (restoresSessions(nsp.adapter)) {
    throw new TypeError(
      'attachPresence: connection state recovery must stay off (a recovered socket keeps an id whose presence was already removed)',
    );
  }
  const server = new PresenceServer(nsp, settings);
  await server.start();
  return {
    close: () => server.close(),
    get nodeId() {
      return server.lease.nodeId;
    },
  };
}

module.exports = { attachPresence, presenceChannel };
