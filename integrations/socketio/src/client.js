/*
 * The client side of the presence integration, for browsers (a plain <script> that defines
 * `window.PresenceClient`) and for Node (require('@presence/socketio/client')). It works on a
 * socket of socket.io-client 4.6 or later.
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.PresenceClient = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /**
   * @typedef {import('./client').PresenceClientOptions} PresenceClientOptions
   * @typedef {import('./client').PresenceClientSocket} PresenceClientSocket
   * @typedef {import('./client').PresenceClient} PresenceClient
   * @typedef {import('./client').JoinAck | import('./client').TimeoutFailure} JoinResult
   * @typedef {import('./client').UpdateAck | import('./client').TimeoutFailure} UpdateResult
   * @typedef {import('./client').JoinOptions} JoinOptions
   * @typedef {import('./client').PresenceData} PresenceData
   * @typedef {import('./client').LeaveAck | import('./client').TimeoutFailure} LeaveResult
   * @typedef {import('./client').HeartbeatAck | import('./client').TimeoutFailure} HeartbeatResult
   * @typedef {import('./client').ForceLeaveReason} ForceLeaveReason
   * @typedef {{timer: ReturnType<typeof setTimeout> | undefined}} RoomState
   */

  /** @type {Required<PresenceClientOptions>} the defaults of the options (`client.d.ts` documents them) */
  var DEFAULTS = {
    heartbeatIntervalMs: 25000,
    heartbeatJitterMs: 5000,
    ackTimeoutMs: 10000,
    onForceLeave: function () {},
    onParticipants: function () {},
  };

  /** The longest delay `setTimeout` honours; a longer one fires at once. */
  var MAX_TIMER_MS = 2147483647;

  /*
   * The checks of the options, named after what they check, with the same messages as the
   * server's (src/options.js): this file is also a plain browser script, so it has its own.
   * Each returns the value or throws a TypeError naming the option.
   */

  /**
   * @param {string} name
   * @param {string} expected
   * @param {unknown} value
   * @returns {never}
   */
  function fail(name, expected, value) {
    var got =
      typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
    throw new TypeError('createPresenceClient: options.' + name + ' must be ' + expected + ' (got ' + got + ')');
  }

  /**
   * @param {unknown} value
   * @param {string} name
   * @param {{allowZero: boolean}} [checks]
   * @returns {number}
   */
  function milliseconds(value, name, checks) {
    var min = checks && checks.allowZero ? 0 : 1;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= MAX_TIMER_MS) return value;
    return fail(name, 'an integer number of milliseconds from ' + min + ' to ' + MAX_TIMER_MS, value);
  }

  /**
   * @template T
   * @param {T} value
   * @param {string} name
   * @returns {T}
   */
  function callback(value, name) {
    if (typeof value === 'function') return value;
    return fail(name, 'a function', value);
  }

  /**
   * An option as given, or its default when not given (or given as undefined).
   * @template {keyof PresenceClientOptions} K
   * @param {PresenceClientOptions | undefined} options
   * @param {K} name
   * @returns {Required<PresenceClientOptions>[K]}
   */
  function given(options, name) {
    var value = options ? options[name] : undefined;
    return value === undefined ? DEFAULTS[name] : /** @type {Required<PresenceClientOptions>[K]} */ (value);
  }

  /**
   * The options with their defaults, checked.
   * @param {PresenceClientOptions | undefined} options
   * @returns {Required<PresenceClientOptions>}
   */
  function readOptions(options) {
    return {
      heartbeatIntervalMs: milliseconds(given(options, 'heartbeatIntervalMs'), 'heartbeatIntervalMs'),
      heartbeatJitterMs: milliseconds(given(options, 'heartbeatJitterMs'), 'heartbeatJitterMs', { allowZero: true }),
      ackTimeoutMs: milliseconds(given(options, 'ackTimeoutMs'), 'ackTimeoutMs'),
      onForceLeave: callback(given(options, 'onForceLeave'), 'onForceLeave'),
      onParticipants: callback(given(options, 'onParticipants'), 'onParticipants'),
    };
  }

  /**
   * Room presence on one Socket.IO client socket.
   *
   * `join(roomId)` asks the server for a presence and, once acknowledged, sends
   * `room:heartbeat` every `heartbeatIntervalMs` plus a random jitter of up to
   * `heartbeatJitterMs` (25–30 s by default). On `room:force-leave`, or a heartbeat answered
   * `not-present`, the room's heartbeat stops and `onForceLeave({roomId, reason})` is called,
   * once per join. The client never joins again by itself. After a reconnection it sends a
   * heartbeat for each room at once, so that a server that lost the presence answers without
   * waiting for the next beat. (`client.d.ts` documents the options.)
   *
   * @param {PresenceClientSocket} socket
   * @param {PresenceClientOptions} [options]
   * @returns {PresenceClient}
   */
  function createPresenceClient(socket, options) {
    var opts = readOptions(options);
    /** @type {Map<string, RoomState>} every room this socket holds */
    var rooms = new Map();
    var connectedBefore = socket.connected;

    /**
     * Sends a request; resolves its acknowledgement (as the server sends it), or the timeout failure.
     * @param {'room:join' | 'room:update' | 'room:leave' | 'room:heartbeat'} event
     * @param {string} roomId
     * @param {{data?: PresenceData}} [fields] the request's data, if it carries some
     * @returns {Promise<unknown>}
     */
    function request(event, roomId, fields) {
      /** @type {{roomId: string, data?: PresenceData}} */
      var payload = { roomId: roomId };
      if (fields && fields.data !== undefined) payload.data = fields.data;
      return socket
        .timeout(opts.ackTimeoutMs)
        .emitWithAck(event, payload)
        .catch(function () {
          return { ok: false, error: 'timeout' };
        });
    }

    /**
     * @param {string} roomId
     * @param {RoomState} state
     */
    function schedule(roomId, state) {
      clearTimeout(state.timer);
      var delay = opts.heartbeatIntervalMs + Math.random() * opts.heartbeatJitterMs;
      state.timer = setTimeout(function () {
        beat(roomId, state);
      }, delay);
    }

    /**
     * @param {string} roomId
     * @param {RoomState} state
     * @returns {Promise<void>}
     */
    function beat(roomId, state) {
      clearTimeout(state.timer);
      state.timer = undefined;
      if (!socket.connected) {
        schedule(roomId, state);
        return Promise.resolve();
      }
      return request('room:heartbeat', roomId).then(function (reply) {
        var ack = /** @type {HeartbeatResult | undefined} */ (reply);
        if (rooms.get(roomId) !== state) return;
        if (ack && ack.ok === false && ack.error === 'not-present') forceLeave(roomId, 'not-present');
        else if (state.timer === undefined) schedule(roomId, state);
      });
    }

    /**
     * @param {string} roomId
     * @param {ForceLeaveReason} reason
     */
    function forceLeave(roomId, reason) {
      var state = rooms.get(roomId);
      if (!state) return;
      clearTimeout(state.timer);
      rooms.delete(roomId);
      opts.onForceLeave({ roomId: roomId, reason: reason });
    }

    /** @param {unknown} payload the `room:force-leave` as it came */
    function onForceLeaveEvent(payload) {
      var event = /** @type {{roomId?: unknown, reason?: unknown} | null | undefined} */ (payload);
      if (event && typeof event.roomId === 'string') {
        forceLeave(event.roomId, /** @type {ForceLeaveReason} */ (String(event.reason)));
      }
    }

    /** @param {import('./client').ParticipantsPayload} payload */
    function onParticipantsEvent(payload) {
      opts.onParticipants(payload);
    }

    function onConnect() {
      if (connectedBefore) {
        rooms.forEach(function (state, roomId) {
          beat(roomId, state);
        });
      }
      connectedBefore = true;
    }

    socket.on('room:force-leave', onForceLeaveEvent);
    socket.on('room:participants', onParticipantsEvent);
    socket.on('connect', onConnect);

    return {
      /**
       * Joins a room, asking to store `options.data` with the presence; resolves the server's
       * acknowledgement `{ok: true, roomId, users, members, count, truncated}` or `{ok: false, error}`.
       * @param {string} roomId
       * @param {JoinOptions} [joinOptions]
       */
      join: function (roomId, joinOptions) {
        return request('room:join', roomId, joinOptions).then(function (reply) {
          var ack = /** @type {JoinResult} */ (reply);
          if (ack && ack.ok) {
            var state = rooms.get(roomId) || { timer: undefined };
            rooms.set(roomId, state);
            schedule(roomId, state);
          }
          return ack;
        });
      },
      /**
       * Asks to replace the data of this socket's presence in a room; resolves `{ok: true,
       * data}` (the data the server stored) or `{ok: false, error}`. `not-present` ends the
       * room as a force-leave does.
       * @param {string} roomId
       * @param {PresenceData} data
       */
      update: function (roomId, data) {
        return request('room:update', roomId, { data: data }).then(function (reply) {
          var ack = /** @type {UpdateResult} */ (reply);
          if (ack && ack.ok === false && ack.error === 'not-present') forceLeave(roomId, 'not-present');
          return ack;
        });
      },
      /**
       * Stops the room's heartbeat and leaves it; resolves `{ok: true}` or `{ok: false, error}`.
       * @param {string} roomId
       */
      leave: function (roomId) {
        var state = rooms.get(roomId);
        if (state) clearTimeout(state.timer);
        rooms.delete(roomId);
        return /** @type {Promise<LeaveResult>} */ (request('room:leave', roomId));
      },
      /** The rooms this client holds a presence in, as far as it knows. */
      rooms: function () {
        return Array.from(rooms.keys());
      },
      /** Stops every heartbeat and removes this helper's listeners from the socket. */
      close: function () {
        rooms.forEach(function (state) {
          clearTimeout(state.timer);
        });
        rooms.clear();
        socket.off('room:force-leave', onForceLeaveEvent);
        socket.off('room:participants', onParticipantsEvent);
        socket.off('connect', onConnect);
      },
    };
  }

  return { createPresenceClient: createPresenceClient };
});
