import type { Server, Socket } from 'socket.io';
import type { RedisClientType, RedisClusterType } from 'redis';
import type { PresenceData, RoomSnapshot } from './protocol';

export * from './protocol';

/**
 * A connected node-redis v5 client (`createClient` of `redis` or `@redis/client`, RESP2 or
 * RESP3), or a connected cluster client (`createCluster`): then every command goes to the
 * room's shard, events come through per-room sharded subscriptions, and the node's lease is
 * kept on every master.
 */
export type PresenceRedisClient = RedisClientType<any, any, any, any, any> | PresenceRedisCluster;

/**
 * What the integration uses of a node-redis v5 cluster client (`createCluster`), whatever its
 * modules, functions, scripts and RESP version.
 */
export type PresenceRedisCluster = Pick<
  RedisClusterType<any, any, any, any, any>,
  'masters' | 'slots' | 'nodeClient' | 'sendCommand' | 'multi' | 'duplicate' | 'isOpen'
>;

/**
 * Where warnings go: `console`, or any object with a `warn(message)` method; `info(message)`,
 * when it has one, gets the engine chosen at start.
 */
export interface PresenceLogger {
  warn(message: string): unknown;
  info?(message: string): unknown;
}

/** The engine that runs the contract (SPEC §13); see {@link AttachPresenceOptions.engine}. */
export type PresenceEngine = 'module' | 'script';

/** The socket type of a Socket.IO server, with its event maps and `socket.data`. */
export type ServerSocket<TServer extends Server<any, any, any, any>> =
  TServer['sockets']['sockets'] extends Map<string, infer S> ? S : Socket;

/** What {@link AttachPresenceOptions.presenceData} is told of the request besides the socket. */
export interface PresenceDataContext {
  roomId: string;
  event: 'join' | 'update';
}

/** The options of {@link attachPresence}. */
export interface AttachPresenceOptions<TSocket = Socket> {
  /**
   * A connected node-redis v5 client, or cluster client (`createCluster`); duplicates of it
   * are opened for pub/sub (on a cluster, one per master). Required.
   */
  redis: PresenceRedisClient;
  /**
   * The socket's user id from its authenticated handshake (for example `socket.data.userId`
   * set by the application's middleware), never from an event's payload. May return a
   * promise. Anything but a valid id (1 to 128 bytes of `A-Z a-z 0-9 - _ . @ + = ~`), or a
   * throw, makes that socket's requests fail with `unauthorized`. Required.
   */
  getUserId: (socket: TSocket) => string | null | undefined | PromiseLike<string | null | undefined>;
  /**
   * The Socket.IO namespace.
   * @default '/'
   */
  namespace?: string;
  /**
   * The database whose events are followed (a non-negative integer).
   * @default the client's database (`options.database`), else 0
   */
  db?: number;
  /**
   * At most one `room:participants` per room per interval, in milliseconds (0 to 2147483647).
   * @default 250
   */
  participantsIntervalMs?: number;
  /**
   * Longest `users` list in acknowledgements and `room:participants` (1 or more); `count` is
   * always exact.
   * @default 200
   */
  maxUsers?: number;
  /**
   * Deadline of each Redis call in milliseconds (1 to 2147483647); past it the request fails with
   * `unavailable`.
   * @default 2000
   */
  commandTimeoutMs?: number;
  /**
   * The lease of this server's node, in milliseconds (1000 to 86400000), renewed about every
   * third of it. Every presence is written through the node, so when the process dies its
   * users leave within the lease plus one `presence.sweep-interval`. A process whose event
   * loop stalls longer than the lease loses its presences: its sockets get `room:force-leave`
   * with reason `node-down` and it goes on as a fresh node.
   * @default 10000
   */
  nodeLeaseMs?: number;
  /**
   * Decides the data stored with a presence (SPEC §12: a display name, an avatar, a role, a
   * status), so that a client cannot claim what its session does not have. Called on each
   * `room:join` and `room:update` with the socket (its handshake, `socket.data`), the data the
   * client asked for (`undefined` when it sent none; already checked to be one JSON value of at
   * most `maxDataBytes`) and the request's room and event; returns the data to store, or
   * `null`/`undefined` for none (a join without data; an update refused with `invalid-data`).
   * May return a promise. A value that is not data is refused with `invalid-data` or
   * `data-too-large`; a throw acknowledges `internal` and is logged, a thrown `PresenceError`
   * acknowledges its code.
   * @default a function returning `null`: no client-supplied data is stored
   */
  presenceData?: (
    socket: TSocket,
    requested: PresenceData | undefined,
    context: PresenceDataContext,
  ) => PresenceData | null | undefined | PromiseLike<PresenceData | null | undefined>;
  /**
   * The longest data, in bytes of its JSON (1 to 65536): larger data, as sent or as decided,
   * is refused with `data-too-large` before it reaches Redis. Keep it at most the module's
   * `presence.max-data` (whose refusals are acknowledged the same way).
   * @default 1024
   */
  maxDataBytes?: number;
  /**
   * Where warnings go (Redis failures, pub/sub connection errors): an object with a `warn` method.
   * @default console
   */
  logger?: PresenceLogger;
  /**
   * The engine: `'module'`, the presence module's `PRESENCE.*` commands (fast and exact: it
   * follows every write and expiry of the keys as it happens); `'script'`, the same contract as
   * a Lua library (`lua/presence.lua`, loaded with `FUNCTION LOAD` or, where `FUNCTION` is
   * refused, `SCRIPT LOAD`) for servers that cannot load modules (managed Redis), with the
   * sweep run by the app servers; `'auto'`, the module where the server has it, else the
   * script engine. The choice is logged once at start (`logger.info`) and exposed as
   * {@link PresenceHandle.engine}. See the README's table of engines for what each guarantees.
   * @default 'auto'
   */
  engine?: 'auto' | PresenceEngine;
  /**
   * Script engine only (the module has its config `presence.ttl`): the TTL, in seconds, a join
   * or a heartbeat gives a presence key (1 to 315360000). Every app server must use the same.
   * @default 21600
   */
  ttl?: number;
  /**
   * Script engine only (the module has `presence.stale-after`): a presence not refreshed for
   * this many seconds is no longer live (0 to 315360000; 0, or a value of at least `ttl`,
   * turns staleness off). Every app server must use the same.
   * @default 90
   */
  staleAfter?: number;
  /**
   * Script engine only: how often, in milliseconds (10 to 3600000), this server tries to sweep
   * (one app server at a time sweeps each shard, under a lease of three intervals).
   * @default 1000
   */
  sweepIntervalMs?: number;
}

/** What {@link attachPresence} resolves. */
export interface PresenceHandle {
  /**
   * The graceful shutdown (call it on SIGTERM): from then on joins, heartbeats and new
   * connections are refused with `shutting-down`; waits for the operations under way, runs
   * `PRESENCE.LEAVE` for every presence of this server's sockets, releases the node's lease,
   * closes the pub/sub connection(s) and resolves. Safe to call more than once. The Socket.IO
   * server and the Redis client stay open for the application to close.
   */
  close(): Promise<void>;
  /**
   * The node this server writes its presences through (`<node>/<socket id>` is the socket of
   * their keys): host name, pid and a random part, e.g. `web-1.7421.k3f9x0`. A new one after
   * a lost lease.
   */
  readonly nodeId: string;
  /** The engine chosen at start (see {@link AttachPresenceOptions.engine}). */
  readonly engine: PresenceEngine;
  /**
   * Reads a room as the engine sees it now, whatever the engine: its first `maxUsers` users
   * with their data and its exact live count (what a join's acknowledgement carries). Rejects
   * with a `PresenceError`: `invalid-room` for a room id that is not valid, `unavailable` when
   * Redis does not answer in time.
   */
  readRoom(roomId: string): Promise<RoomSnapshot>;
  /**
   * Brings a room's index in line with its keys, for presence keys written, changed or deleted
   * by clients that bypass the engine (the seed's raw `SET … EX`, a `DEL` by hand): with the
   * script engine, it scans the keys of the room (`SCAN … MATCH room:presence:<room>:*`),
   * indexes and announces what it finds as the module would have (`join`, `replaced`, `leave`
   * with reason `deleted`, `no-ttl`) and resolves with the number of presences changed. The
   * module follows every write as it happens: it resolves with 0 at once. Rejects with a
   * `PresenceError` (`invalid-room`, `unavailable`).
   */
  reconcile(roomId: string): Promise<number>;
}

/**
 * Attaches room presence to a Socket.IO server. Resolves once the pub/sub subscription is
 * confirmed and the handlers are in place: await it before the HTTP server listens
 * (connections arriving earlier are refused with `unavailable`).
 *
 * Handles `room:join`, `room:update`, `room:leave` and `room:heartbeat` (each `{roomId}`, with
 * `data` for a join or an update, and an acknowledgement, see
 * {@link PresenceClientToServerEvents}), leaves on disconnect, and sends
 * `room:participants` and `room:force-leave` (see {@link PresenceServerToClientEvents}) to
 * this server's own sockets only.
 *
 * Takes the lease of a new node (see {@link PresenceHandle.nodeId}) before it accepts
 * connections, and rejects with a `PresenceError` when Redis refuses it or does not answer
 * (a module without `PRESENCE.LEASE`, say).
 *
 * Rejects with a `TypeError` that names the option when `redis` is not a node-redis client,
 * `getUserId` is not a function, `namespace` is not a string, `logger` has no `warn` method or
 * a number option is not an integer in its range; or when the server has connection state
 * recovery on (seen from the namespace's adapter, Socket.IO's `SessionAwareAdapter`; with an
 * adapter of another package, a restored socket is taken out of its presence channels and one
 * warning is logged).
 */
export declare function attachPresence<TServer extends Server<any, any, any, any>>(
  io: TServer,
  options: AttachPresenceOptions<ServerSocket<TServer>>,
): Promise<PresenceHandle>;

/**
 * The Socket.IO room that holds this server's sockets present in a presence room, for
 * applications that broadcast their own events to the same audience.
 */
export declare function presenceChannel<RoomId extends string>(roomId: RoomId): `presence:${RoomId}`;
