import type {
  ForceLeavePayload,
  JoinAck,
  JoinRequest,
  LeaveAck,
  ParticipantsPayload,
  PresenceData,
  TimeoutFailure,
  UpdateAck,
} from './protocol';

export * from './protocol';

/** In a browser, `src/client.js` loaded as a plain `<script>` defines `window.PresenceClient`. */
export as namespace PresenceClient;

/**
 * What the client needs of a socket.io-client (4.6 or later) socket. Any `Socket` of
 * socket.io-client fits: an untyped one, or one whose event maps include
 * {@link PresenceServerToClientEvents} and {@link PresenceClientToServerEvents}.
 */
export interface PresenceClientSocket {
  readonly connected: boolean;
  on(event: 'room:force-leave' | 'room:participants' | 'connect', listener: (...args: any[]) => void): unknown;
  off(event: 'room:force-leave' | 'room:participants' | 'connect', listener: (...args: any[]) => void): unknown;
  timeout(ms: number): {
    emitWithAck(event: 'room:join' | 'room:update' | 'room:leave' | 'room:heartbeat', payload: JoinRequest): Promise<unknown>;
  };
}

/** The options of {@link createPresenceClient}. */
export interface PresenceClientOptions {
  /**
   * Base period of `room:heartbeat` per joined room, in milliseconds (1 to 2147483647).
   * @default 25000
   */
  heartbeatIntervalMs?: number;
  /**
   * Random extra delay added to each period, in milliseconds (0 to 2147483647; so 25–30 s by
   * default).
   * @default 5000
   */
  heartbeatJitterMs?: number;
  /**
   * A request without acknowledgement after this many milliseconds (1 to 2147483647) resolves
   * `{ok: false, error: 'timeout'}`.
   * @default 10000
   */
  ackTimeoutMs?: number;
  /**
   * Called once per join when the presence ended without `leave()`: on `room:force-leave`, or
   * a heartbeat answered `not-present`. The room's heartbeat has stopped; the client does not
   * join again by itself.
   * @default a no-op
   */
  onForceLeave?: (event: ForceLeavePayload) => void;
  /**
   * Called with each `room:participants`.
   * @default a no-op
   */
  onParticipants?: (event: ParticipantsPayload) => void;
}

/** The options of {@link PresenceClient.join}. */
export interface JoinOptions {
  /** The data to ask the server to store with the presence; the server decides (`presenceData`). */
  data?: PresenceData;
}

/** Room presence on one socket; see {@link createPresenceClient}. */
export interface PresenceClient {
  /**
   * Joins a room, asking to store `options.data` with the presence; resolves the server's
   * acknowledgement `{ok: true, roomId, users, members, count, truncated}` or `{ok: false,
   * error}`. On success the room's heartbeat starts.
   */
  join(roomId: string, options?: JoinOptions): Promise<JoinAck | TimeoutFailure>;
  /**
   * Asks to replace the data of this socket's presence in a room; resolves `{ok: true, data}`
   * (what the server stored) or `{ok: false, error}` (`invalid-data`, `data-too-large`,
   * `not-present`, …). `not-present` stops the room's heartbeat and calls `onForceLeave`, as
   * a heartbeat answered so does. The room's sockets see the change in their next
   * `room:participants`.
   */
  update(roomId: string, data: PresenceData): Promise<UpdateAck | TimeoutFailure>;
  /** Stops the room's heartbeat and leaves it; resolves `{ok: true}` or `{ok: false, error}`. */
  leave(roomId: string): Promise<LeaveAck | TimeoutFailure>;
  /** The rooms this client holds a presence in, as far as it knows. */
  rooms(): string[];
  /** Stops every heartbeat and removes this helper's listeners from the socket. */
  close(): void;
}

/**
 * Room presence on one Socket.IO client socket.
 *
 * `join(roomId)` asks the server for a presence and, once acknowledged, sends
 * `room:heartbeat` every `heartbeatIntervalMs` plus a random jitter of up to
 * `heartbeatJitterMs`. On `room:force-leave`, or a heartbeat answered `not-present`, the
 * room's heartbeat stops and `onForceLeave({roomId, reason})` is called, once per join. The
 * client never joins again by itself. After a reconnection it sends a heartbeat for each room
 * at once.
 *
 * An option given as `undefined` takes its default. Throws a `TypeError` that names the option
 * when one is out of its range or not a function.
 */
export declare function createPresenceClient(socket: PresenceClientSocket, options?: PresenceClientOptions): PresenceClient;
