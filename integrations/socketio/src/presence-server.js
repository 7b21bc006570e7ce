'use strict';

const { ErrorCode, PresenceError } = require('./errors');
const { isValidId } = require('./ids');
const { socketIdOf, nodeOf } = require('./socket-ids');
const { parseRoomRequest } = require('./room-request');
const { PresenceCommands, NoLeaseError } = require('./presence-commands');
const { ParticipantsPublisher } = require('./participants-publisher');
const { NodeLease } = require('./node-lease');
const { createTopology } = require('./topology');
const { presenceChannel } = require('./presence-channel');
const { SocketSession } = require('./socket-session');
const { RoomResync } = require('./resync');
const { OutageLog } = require('./outage-log');
const { errorMessage } = require('./warnings');

/**
 * @typedef {import('socket.io').Namespace} Namespace
 * @typedef {import('socket.io').Socket} Socket
 * @typedef {import('./socket-session').Membership} Membership
 * @typedef {import('./presence-events').PresenceEvent} PresenceEvent
 * @typedef {{ok: true, roomId?: string, users?: string[], count?: number, truncated?: boolean}} Acknowledgement
 * @typedef {{holder: string | null, missed: boolean}} JoinUnderWay
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
    this.commandTimeoutMs = settings.commandTimeoutMs;
    this.topology = createTopology(settings.redis, this.logger);
    this.commands = new PresenceCommands(this.topology, { timeoutMs: settings.commandTimeoutMs, maxUsers: settings.maxUsers });
    this.lease = new NodeLease({
      commands: this.commands,
      leaseMs: settings.nodeLeaseMs,
      logger: this.logger,
      onLost: (loss) => this.#onLeaseLost(loss),
      shards: this.topology.leaseShards(() => this.#roomsHeld()),
    });
    this.publisher = new ParticipantsPublisher({
      nsp,
      commands: this.commands,
      channelOf: presenceChannel,
      intervalMs: settings.participantsIntervalMs,
      logger: this.logger,
    });
    this.resync = new RoomResync({ read: (rooms) => this.#reread(rooms), stopped: () => this.closing, logger: this.logger });
    this.subscriber = this.topology.subscriber({
      db: settings.db,
      onEvent: (event) => this.#onEvent(event),
      onResubscribed: (rooms) => this.#background(this.resync.request(rooms), 're-read of rooms'),
      logger: this.logger,
    });
    /** @type {Map<string, SocketSession>} this server's connected sockets, by socket id */
    this.sessions = new Map();
    /**
     * roomId → the joins under way there. An event that arrives while a join waits for its
     * reply may be missed by that socket (not yet in the room's channel, and not in the state
     * its acknowledgement read), so the room is sent again once the join is done.
     * @type {Map<string, Set<JoinUnderWay>>}
     */
    this.joinsUnderWay = new Map();
    /** Counts the joins Redis confirmed: a re-read leaves alone the memberships confirmed after it began. */
    this.seq = 0;
    this.started = false;
    /** @type {Promise<void> | null} */
    this.closePromise = null;
    this.outage = new OutageLog(this.logger);
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
    await this.subscriber.start();
    try {
      await this.lease.start();
    } catch (err) {
      await this.subscriber.close();
      await this.topology.close();
      const code = err instanceof PresenceError ? err.code : ErrorCode.INTERNAL;
      throw new PresenceError(code, `attachPresence: cannot take the lease of node ${this.lease.nodeId}: ${errorMessage(err)}`, err);
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
        `presence: cannot release the lease of node ${this.lease.nodeId} (it ends by itself within its ${this.lease.leaseMs} ms): ${errorMessage(err)}`,
      );
    }
    this.publisher.close();
    await this.subscriber.close();
    await this.topology.close();
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
   * Lets `promise` run on its own, logging a failure instead of leaving it unhandled.
   * @param {Promise<unknown>} promise
   * @param {string} what
   */
  #background(promise, what) {
    promise.catch((err) => this.logger.warn(`presence: ${what} failed: ${errorMessage(err)}`));
  }

  /**
   * Registers one `room:*` handler: validates the payload, resolves the user, queues the
   * action on the socket's queue and acknowledges its result or `{ok: false, error}`. With
   * `refusedWhileClosing`, the request fails with `shutting-down` once `close()` was called.
   * @param {SocketSession} session
   * @param {string} event
   * @param {(roomId: string, userId: string) => Promise<Acknowledgement>} action
   * @param {{refusedWhileClosing: boolean}} options
   */
  #on(session, event, action, { refusedWhileClosing }) {
    session.socket.on(event, (/** @type {unknown[]} */ ...args) => {
      const last = args[args.length - 1];
      const ack = typeof last === 'function' ? last : () => {};
      if (ack === last) args.pop();
      let roomId;
      try {
        roomId = parseRoomRequest(args);
      } catch (err) {
        ack({ ok: false, error: err instanceof PresenceError ? err.code : ErrorCode.INVALID_PAYLOAD });
        return;
      }
      session
        .run(async () => {
          if (refusedWhileClosing && this.closing) throw new PresenceError(ErrorCode.SHUTTING_DOWN);
          const userId = await session.userIdPromise;
          if (userId === null) throw new PresenceError(ErrorCode.UNAUTHORIZED);
          return action(roomId, userId);
        })
        .then(
          (result) => {
            this.outage.answered();
            ack(result);
          },
          (err) => {
            const code = err instanceof PresenceError ? err.code : ErrorCode.INTERNAL;
            if (code === ErrorCode.UNAVAILABLE) this.outage.failed(`${event} ${roomId}`, err);
            else if (code === ErrorCode.INTERNAL) this.logger.warn(`presence: ${event} ${roomId} failed: ${errorMessage(err)}`);
            ack({ ok: false, error: code });
          },
        );
    });
  }

  /**
   * Joins through the node held now (waiting for it while its lease is being taken again).
   * When that node's lease turns out lost, by a `NOLEASE` answer or while the join was under
   * way (its presence went with the node), the join is tried again through the fresh node,
   * up to the topology's `joinAttempts`.
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<Acknowledgement>}
   */
  async #join(session, roomId, userId) {
    const { socket } = session;
    if (session.closed) throw new PresenceError(ErrorCode.NOT_PRESENT, 'socket disconnected');
    /** @type {JoinUnderWay} */
    const underWay = { holder: null, missed: false };
    const joins = this.joinsUnderWay.get(roomId) ?? new Set();
    this.joinsUnderWay.set(roomId, joins.add(underWay));
    const attempts = this.topology.joinAttempts;
    let room;
    let holder;
    try {
      await this.subscriber.watch(roomId, this.commandTimeoutMs);
      let renewed = !this.topology.renewsOnNoLease;
      for (let attempt = 1; ; attempt += 1) {
        const nodeId = await this.lease.ready(this.commandTimeoutMs);
        holder = `${nodeId}/${socket.id}`;
        underWay.holder = holder;
        session.uncertain.set(roomId, holder);
        try {
          room = await this.commands.join(roomId, userId, holder);
        } catch (err) {
          const noLease = err instanceof NoLeaseError;
          if (noLease || (err instanceof PresenceError && err.code === ErrorCode.INTERNAL)) session.uncertain.delete(roomId);
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

  /**
   * @param {string} roomId
   * @param {JoinUnderWay} underWay
   */
  #finishJoin(roomId, underWay) {
    const joins = this.joinsUnderWay.get(roomId);
    joins?.delete(underWay);
    if (joins?.size === 0) this.joinsUnderWay.delete(roomId);
  }

  /**
   * Stops following the events of a room once none of this server's sockets is in it and no
   * join of it is under way (on a cluster, its sharded subscription ends).
   * @param {string} roomId
   */
  #unwatchIfUnused(roomId) {
    if (this.joinsUnderWay.has(roomId)) return;
    const sockets = this.nsp.adapter.rooms.get(presenceChannel(roomId));
    if (sockets && sockets.size > 0) return;
    this.subscriber.unwatch(roomId);
  }

  /**
   * The rooms where a socket of this server holds (or may hold) a presence, or a join is under way.
   * @returns {Generator<string>}
   */
  *#roomsHeld() {
    for (const session of this.sessions.values()) {
      yield* session.memberships.keys();
      yield* session.uncertain.keys();
    }
    yield* this.joinsUnderWay.keys();
  }

  /**
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<Acknowledgement>}
   */
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

  /**
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<Acknowledgement>}
   */
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

  /**
   * Leaves every presence the socket may hold (disconnect and shutdown).
   * @param {SocketSession} session
   */
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
    const reasons = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
    if (reasons.length > 0) {
      this.logger.warn(
        `presence: ${reasons.length} leave(s) of socket ${session.socket.id} failed (the TTL rule will remove them): ${errorMessage(reasons[0])}`,
      );
    }
  }

  /**
   * Ends a membership and tells the socket, unless that membership already ended.
   * @param {SocketSession} session
   * @param {Membership} membership
   * @param {string} reason
   */
  #forceLeave(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    session.memberships.delete(membership.roomId);
    session.socket.leave(presenceChannel(membership.roomId));
    this.#unwatchIfUnused(membership.roomId);
    this.#sendForceLeave(session, membership.roomId, reason);
  }

  /**
   * @param {SocketSession} session
   * @param {string} roomId
   * @param {string} reason
   */
  #sendForceLeave(session, roomId, reason) {
    session.forceLeft.add(roomId);
    session.socket.emit('room:force-leave', { roomId, reason });
  }

  /**
   * The node's lease was found lost: every presence written through the old node is gone (the
   * lease released the old node, so that none comes back). Its sockets are force-left, with
   * reason `node-down` when the lease expired, `reset` when Redis lost it while it was renewed
   * on time (as for any presence Redis lost), and the loss is logged in one line.
   * @param {import('./node-lease').LeaseLoss} loss
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

  /** @param {PresenceEvent} event */
  #onEvent(event) {
    if (event.type === 'reset') {
      this.#background(this.resync.request(event.room === undefined ? undefined : [event.room]), 're-read of rooms');
      return;
    }
    if (event.type === 'node-down') {
      // Another node's presences each have their own force-leave; this node's means a lost
      // lease when it took presences with it (a shard of a cluster where this server held
      // none may announce the end of an old lease key).
      if (!this.closing && event.presences > 0) this.lease.lost(event.node, 'Redis announced node-down for it');
      return;
    }
    this.publisher.schedule(event.room);
    for (const join of this.joinsUnderWay.get(event.room) ?? []) {
      if (event.type !== 'join' || event.socket !== join.holder) join.missed = true;
    }
    if (event.type === 'join') return;
    const session = this.sessions.get(socketIdOf(event.socket));
    const membership = session && session.memberships.get(event.room);
    if (!session || !membership || membership.userId !== event.user || membership.holder !== event.socket) return;
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
   * @param {SocketSession} session
   * @param {Membership} membership
   * @param {string} reason
   */
  async #confirmLoss(session, membership, reason) {
    if (session.memberships.get(membership.roomId) !== membership) return;
    let present;
    try {
      present = await this.commands.beat(membership.roomId, membership.userId, membership.holder);
    } catch (err) {
      this.logger.warn(`presence: cannot check socket ${session.socket.id} in room ${membership.roomId}: ${errorMessage(err)}`);
      return;
    }
    if (!present) this.#forceLeave(session, membership, reason);
  }

  /**
   * Re-reads rooms (after the pub/sub connection came back, or on a `reset` event):
   * force-leaves (reason `reset`) the sockets whose presence is gone, and sends fresh
   * participant lists. Memberships confirmed after the re-read began are left alone.
   * @param {import('./resync').RoomsToRead} which
   */
  async #reread(which) {
    const horizon = this.seq;
    /** @type {Map<string, Array<{session: SocketSession, membership: Membership}>>} */
    const rooms = new Map();
    for (const session of this.sessions.values()) {
      for (const membership of session.memberships.values()) {
        if (membership.confirmedSeq > horizon || (which !== 'all' && !which.has(membership.roomId))) continue;
        const entries = rooms.get(membership.roomId);
        if (entries) entries.push({ session, membership });
        else rooms.set(membership.roomId, [{ session, membership }]);
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

exports.PresenceServer = PresenceServer;
