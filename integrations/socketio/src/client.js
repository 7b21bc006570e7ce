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
  function fail(name, expected, value) {
    var got =
      typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
    throw new TypeError('createPresenceClient: options.' + name + ' must be ' + expected + ' (got ' + got + ')');
  }

  function milliseconds(value, name, checks) {
    var min = checks && checks.allowZero ? 0 : 1;
    if (Number.isInteger(value) && value >= min && value <= MAX_TIMER_MS) return value;
    return fail(name, 'an integer number of milliseconds from ' + min + ' to ' + MAX_TIMER_MS, value);
  }

  function callback(value, name) {
    if (typeof value === 'function') return value;
    return fail(name, 'a function', value);
  }

  /** The options with their defaults (an option given as undefined takes its default), checked. */
  function readOptions(options) {
    var given = {};
    Object.keys(DEFAULTS).forEach(function (name) {
      given[name] = options && options[name] !== undefined ? options[name] : DEFAULTS[name];
    });
    return {
      heartbeatIntervalMs: milliseconds(given.heartbeatIntervalMs, 'heartbeatIntervalMs'),
      heartbeatJitterMs: milliseconds(given.heartbeatJitterMs, 'heartbeatJitterMs', { allowZero: true }),
      ackTimeoutMs: milliseconds(given.ackTimeoutMs, 'ackTimeoutMs'),
      onForceLeave: callback(given.onForceLeave, 'onForceLeave'),
      onParticipants: callback(given.onParticipants, 'onParticipants'),
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
   * waiting for the next beat.
   *
   * @param {import('socket.io-client').Socket} socket
   * @param {object} [options]
   * @param {number} [options.heartbeatIntervalMs=25000]
   * @param {number} [options.heartbeatJitterMs=5000]
   * @param {number} [options.ackTimeoutMs=10000] after that, a request resolves `{ok: false, error: 'timeout'}`
   * @param {(event: {roomId: string, reason: string}) => void} [options.onForceLeave]
   * @param {(event: {roomId: string, users: string[], count: number, truncated: boolean}) => void} [options.onParticipants]
   * @returns {{join: (roomId: string) => Promise<object>, leave: (roomId: string) => Promise<object>,
   *   rooms: () => string[], close: () => void}}
   */
  function createPresenceClient(socket, options) {
    var opts = readOptions(options);
    /** roomId → {timer} for every room this socket holds. */
    var rooms = new Map();
    var connectedBefore = socket.connected;

    function request(event, roomId) {
      return socket
        .timeout(opts.ackTimeoutMs)
        .emitWithAck(event, { roomId: roomId })
        .catch(function () {
          return { ok: false, error: 'timeout' };
        });
    }

    function schedule(roomId, state) {
      clearTimeout(state.timer);
      var delay = opts.heartbeatIntervalMs + Math.random() * opts.heartbeatJitterMs;
      state.timer = setTimeout(function () {
        beat(roomId, state);
      }, delay);
    }

    function beat(roomId, state) {
      clearTimeout(state.timer);
      state.timer = null;
      if (!socket.connected) {
        schedule(roomId, state);
        return Promise.resolve();
      }
      return request('room:heartbeat', roomId).then(function (ack) {
        if (rooms.get(roomId) !== state) return;
        if (ack && ack.ok === false && ack.error === 'not-present') forceLeave(roomId, 'not-present');
        else if (state.timer === null) schedule(roomId, state);
      });
    }

    function forceLeave(roomId, reason) {
      var state = rooms.get(roomId);
      if (!state) return;
      clearTimeout(state.timer);
      rooms.delete(roomId);
      opts.onForceLeave({ roomId: roomId, reason: reason });
    }

    function onForceLeaveEvent(payload) {
      if (payload && typeof payload.roomId === 'string') forceLeave(payload.roomId, String(payload.reason));
    }

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
       * Joins a room; resolves the server's acknowledgement `{ok: true, roomId, users, count,
       * truncated}` or `{ok: false, error}`.
       */
      join: function (roomId) {
        return request('room:join', roomId).then(function (ack) {
          if (ack && ack.ok) {
            var state = rooms.get(roomId) || { timer: null };
            rooms.set(roomId, state);
            schedule(roomId, state);
          }
          return ack;
        });
      },
      /** Stops the room's heartbeat and leaves it; resolves `{ok: true}` or `{ok: false, error}`. */
      leave: function (roomId) {
        var state = rooms.get(roomId);
        if (state) clearTimeout(state.timer);
        rooms.delete(roomId);
        return request('room:leave', roomId);
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
