/*
 * The Socket.IO protocol of the presence integration: the events, their payloads and
 * acknowledgements. Types only; `index.d.ts`, `server.d.ts` and `client.d.ts` re-export them.
 */
import type { ErrorCode, ServerErrorCode } from './errors';

/** The payload of `room:leave` and `room:heartbeat`. Other fields are ignored (a `userId` among them). */
export interface RoomRequest {
  /** 1 to 128 bytes of `A-Z a-z 0-9 - _ . @ + = ~`, else the request fails with `invalid-room`. */
  roomId: string;
}

/** One JSON value: what a presence's data may be. */
export type PresenceData = null | boolean | number | string | PresenceData[] | { [key: string]: PresenceData };

/**
 * The payload of `room:join`: the room, and the data the client asks to store with its
 * presence. The server's `presenceData` option decides what is stored (by default nothing).
 */
export interface JoinRequest extends RoomRequest {
  data?: PresenceData;
}

/** The payload of `room:update`: the data the client asks to store instead, decided by the server's `presenceData`. */
export interface UpdateRequest extends RoomRequest {
  data: PresenceData;
}

/** A user of a room and the data of its presence (null when it has none). */
export interface Member {
  userId: string;
  data: PresenceData | null;
}

/** A refused request: `{ok: false, error}`. */
export interface AckFailure<Code extends ErrorCode = ServerErrorCode> {
  ok: false;
  error: Code;
}

/** What the client helpers resolve when no acknowledgement arrived within `ackTimeoutMs`. */
export type TimeoutFailure = AckFailure<'timeout'>;

/** A room's participants: the first `maxUsers` user ids in byte order, their data, and the exact live count. */
export interface RoomSnapshot {
  roomId: string;
  /** At most `maxUsers` (default 200) user ids, in byte order. */
  users: string[];
  /** The same users, in the same order, each with the data of its presence. */
  members: Member[];
  /** The room's exact live count, even when `users` was cut. */
  count: number;
  /** Whether users were left out of `users` (`count > users.length`). */
  truncated: boolean;
}

/** The acknowledgement of `room:join`: the room as read in the same transaction as the join. */
export interface JoinSuccess extends RoomSnapshot {
  ok: true;
}

/** The acknowledgement of `room:join`. */
export type JoinAck = JoinSuccess | AckFailure;

/** The acknowledgement of a `room:update` that succeeded: the data stored, as `presenceData` decided it. */
export interface UpdateSuccess {
  ok: true;
  data: PresenceData;
}

/**
 * The acknowledgement of `room:update`. `not-present` means this socket holds no presence in
 * the room; the server then also sends `room:force-leave` (once per join).
 */
export type UpdateAck = UpdateSuccess | AckFailure;

/** The acknowledgement of `room:leave`. */
export type LeaveAck = { ok: true } | AckFailure;

/**
 * The acknowledgement of `room:heartbeat`. `not-present` means this socket lost its presence
 * in the room; the server then also sends `room:force-leave` (once per join).
 */
export type HeartbeatAck = { ok: true } | AckFailure;

/** The payload of `room:participants`, sent when the room changed (a join, a leave, a data update), coalesced per room. */
export type ParticipantsPayload = RoomSnapshot;

/** The reasons the module gives when a presence ends without a leave (its `force-leave` events). */
export type ModuleForceLeaveReason = 'stale' | 'expired' | 'replaced' | 'evicted' | 'no-ttl' | 'node-down';

/**
 * Why a socket lost its presence without asking:
 * - `stale`: no heartbeat for `presence.stale-after`; the module's sweeper removed it;
 * - `expired`: the key's TTL ran out;
 * - `replaced`: the same user joined the room from another socket;
 * - `evicted`: Redis evicted the key under memory pressure;
 * - `no-ttl`: the key was found without a TTL and removed;
 * - `node-down`: the lease of the server's node ended (its event loop stalled, or Redis was
 *   unreachable, for longer than `nodeLeaseMs`), and with it every presence written through
 *   that node;
 * - `deleted`: the key was deleted (a raw `DEL`, or a `PRESENCE.LEAVE` this socket did not ask for);
 * - `not-present`: a heartbeat found no presence for this socket;
 * - `reset`: FLUSHDB/FLUSHALL/SWAPDB or a load replaced the presences, or Redis came back
 *   without this socket's presence after the pub/sub connection dropped.
 */
export type ForceLeaveReason = ModuleForceLeaveReason | 'deleted' | 'not-present' | 'reset';

/** The payload of `room:force-leave`: at most one per socket and room for each join. */
export interface ForceLeavePayload {
  roomId: string;
  reason: ForceLeaveReason;
}

/**
 * The events a client sends, each `{roomId}` (with `data` for a join or an update) and an acknowledgement, in the shape of
 * Socket.IO's typed events (`Server<PresenceClientToServerEvents, …>`,
 * `Socket<…, PresenceClientToServerEvents>` of socket.io-client).
 */
export interface PresenceClientToServerEvents {
  'room:join': (payload: JoinRequest, ack: (response: JoinAck) => void) => void;
  'room:update': (payload: UpdateRequest, ack: (response: UpdateAck) => void) => void;
  'room:leave': (payload: RoomRequest, ack: (response: LeaveAck) => void) => void;
  'room:heartbeat': (payload: RoomRequest, ack: (response: HeartbeatAck) => void) => void;
}

/** The events the server sends to its own sockets, in the shape of Socket.IO's typed events. */
export interface PresenceServerToClientEvents {
  'room:participants': (payload: ParticipantsPayload) => void;
  'room:force-leave': (payload: ForceLeavePayload) => void;
}
