/*
 * The live-room page: the join form, the room with its live participant list and count, and
 * the dialog that says why this page is not in the room any more. The words come from
 * messages.js, names and room ids from names.js. Each person's name, avatar hue and status
 * ("away" while their tab is hidden) are the data of their presence.
 */
(function () {
  'use strict';

  var Names = window.LiveRoomNames;
  var Text = window.LiveRoomMessages;

  /** How often a page that is not in the room it shows reads that room again. */
  var OUTSIDE_POLL_MS = 3000;
  /** How long a join waits for the connection before giving up. */
  var CONNECT_TIMEOUT_MS = 10000;
  /** First and longest delay before connecting again after the server refused the handshake. */
  var RETRY_MS = 1000;
  var RETRY_MAX_MS = 5000;

  function byId(id) {
    return document.getElementById(id);
  }

  var el = {
    connection: byId('connection'),
    alert: byId('alert'),
    lobby: byId('lobby'),
    form: byId('join-form'),
    name: byId('name'),
    nameError: byId('name-error'),
    room: byId('room'),
    roomError: byId('room-error'),
    join: byId('join'),
    roomView: byId('room-view'),
    roomTitle: byId('room-title'),
    roomSubtitle: byId('room-subtitle'),
    leave: byId('leave'),
    outside: byId('outside'),
    outsideText: byId('outside-text'),
    outsideBack: byId('outside-back'),
    outsideRejoin: byId('outside-rejoin'),
    count: byId('count'),
    countLabel: byId('count-label'),
    users: byId('users'),
    truncated: byId('truncated'),
    roomNote: byId('room-note'),
    status: byId('status'),
    dialog: byId('force-leave-dialog'),
    reason: byId('force-leave-reason'),
    rejoin: byId('rejoin'),
  };

  var state = {
    settings: null,
    /** The Socket.IO connection of the current user: {name, userId, token, socket, presence, closed}. */
    connection: null,
    /** {id, name} of the user, once a join succeeded. */
    me: null,
    /** {id, name} of the room shown. */
    room: null,
    /** True while this page holds a presence in `room`. */
    inRoom: false,
    /** The force-leave reason while the page shows a room it is not in. */
    lostReason: null,
    /** Whether the connection dropped since the last join (a restarted server, say). */
    disconnectedSinceJoin: false,
    pollTimer: null,
    busy: false,
  };

  var collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

  /* ---------- small helpers ---------- */

  function show(element, text) {
    element.textContent = text || '';
    element.hidden = !text;
  }

  function announce(text) {
    el.status.textContent = text;
  }

  function showAlert(text) {
    show(el.alert, text);
  }

  /** An error whose message is for the user. */
  function userError(code) {
    var err = new Error(Text.requestError(code));
    err.code = code;
    return err;
  }

  /** Fetches JSON; rejects with a {@link userError} (`offline`, `unavailable`, …). */
  function fetchJson(url) {
    return fetch(url, { cache: 'no-store' }).then(
      function (res) {
        if (res.status === 503) throw userError('unavailable');
        if (!res.ok) throw userError('http-' + res.status);
        return res.json();
      },
      function () {
        throw userError('offline');
      },
    );
  }

  function loadSettings() {
    if (state.settings) return Promise.resolve(state.settings);
    return fetchJson('/api/config').then(function (settings) {
      state.settings = settings;
      return settings;
    });
  }

  /** Logs in with a display name: resolves `{token, userId}` (the server makes the id). */
  function fetchToken(name) {
    return fetchJson('/api/token?name=' + encodeURIComponent(name));
  }

  function remember(name, room) {
    try {
      localStorage.setItem('live-room', JSON.stringify({ name: name, room: room }));
    } catch (err) {
      return;
    }
  }

  function recall() {
    try {
      return JSON.parse(localStorage.getItem('live-room')) || {};
    } catch (err) {
      return {};
    }
  }

  /* ---------- participants ---------- */

  function hue(id) {
    var hash = 0;
    for (var i = 0; i < id.length; i++) hash = (hash * 31 + id.charCodeAt(i)) >>> 0;
    return hash % 360;
  }

  function initials(name) {
    var words = name.split(' ').filter(Boolean);
    var letters = words.slice(0, 2).map(function (word) {
      return Array.from(word)[0];
    });
    return letters.join('').toUpperCase();
  }

  /**
   * How a member of the room is shown, from the data of its presence: its name, avatar hue and
   * status; a member without a name (a client logged in by user id) is shown by its id.
   */
  function personOf(member) {
    var data = member.data !== null && typeof member.data === 'object' ? member.data : {};
    return {
      id: member.userId,
      name: typeof data.name === 'string' && data.name !== '' ? data.name : member.userId,
      hue: Number.isInteger(data.hue) && data.hue >= 0 && data.hue < 360 ? data.hue : hue(member.userId),
      away: data.status === 'away',
    };
  }

  function badgeFor(person) {
    if (!state.me || person.id !== state.me.id) return '';
    return state.inRoom ? Text.you : Text.youElsewhere;
  }

  function tagOf(className, text) {
    var tag = document.createElement('span');
    tag.className = className;
    tag.textContent = text;
    return tag;
  }

  function personItem(person, badge, key) {
    var item = document.createElement('li');
    item.className = 'person' + (badge ? ' me' : '') + (person.away ? ' away' : '');
    item.dataset.key = key;
    var avatar = document.createElement('span');
    avatar.className = 'avatar';
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initials(person.name);
    avatar.style.backgroundColor = 'hsl(' + person.hue + ' 55% 42%)';
    var label = document.createElement('span');
    label.className = 'person-name';
    label.dir = 'auto';
    label.textContent = person.name;
    item.append(avatar, label);
    if (person.away) item.append(tagOf('away-tag', Text.away));
    if (badge) item.append(tagOf('badge', badge));
    return item;
  }

  /** The people to show: this user first, then everybody else by name. */
  function orderPeople(members) {
    var mine = state.me ? state.me.id : null;
    var people = members.map(personOf);
    var me = people.filter(function (person) {
      return person.id === mine;
    })[0];
    var others = people.filter(function (person) {
      return person.id !== mine;
    });
    others.sort(function (a, b) {
      return collator.compare(a.name, b.name) || (a.id < b.id ? -1 : 1);
    });
    if (!me && state.inRoom && state.me) me = { id: mine, name: state.me.name, hue: state.me.hue, away: false };
    return me ? [me].concat(others) : others;
  }

  /** Updates the list in place, so that assistive technology announces only what changed. */
  function syncList(people) {
    var existing = new Map();
    Array.prototype.forEach.call(el.users.children, function (item) {
      existing.set(item.dataset.key, item);
    });
    people.forEach(function (person, index) {
      var badge = badgeFor(person);
      var key = [person.id, person.name, person.hue, person.away, badge].join('\n');
      var item = existing.get(key) || personItem(person, badge, key);
      existing.delete(key);
      if (el.users.children[index] !== item) el.users.insertBefore(item, el.users.children[index] || null);
    });
    existing.forEach(function (item) {
      item.remove();
    });
  }

  function renderPeople(members, count) {
    var ids = orderPeople(members);
    var shownCount = Math.max(count, ids.length);
    syncList(ids);
    el.count.textContent = String(shownCount);
    el.countLabel.textContent = Text.count(shownCount);
    show(el.truncated, shownCount > ids.length ? Text.more(shownCount - ids.length) : '');
    show(el.roomNote, shownCount === 0 ? Text.nobody : '');
  }

  /* ---------- views ---------- */

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function showLobby() {
    stopPolling();
    state.inRoom = false;
    state.lostReason = null;
    el.roomView.hidden = true;
    el.lobby.hidden = false;
    el.name.focus();
  }

  function showRoom() {
    stopPolling();
    el.lobby.hidden = true;
    el.roomView.hidden = false;
    el.roomView.classList.toggle('is-outside', !state.inRoom);
    el.roomTitle.textContent = state.room.name;
    show(el.roomSubtitle, state.inRoom ? Text.hereAs(state.me.name) : '');
    el.leave.hidden = !state.inRoom;
    el.outside.hidden = state.inRoom;
    el.outsideText.textContent = Text.notInRoom;
    el.outsideRejoin.textContent = Text.rejoinLabel(state.lostReason);
  }

  /** Reads the room shown while this page is not in it, every few seconds. */
  function pollRoom() {
    var room = state.room;
    fetchJson('/api/room?id=' + encodeURIComponent(room.id))
      .then(
        function (body) {
          if (state.inRoom || state.room !== room) return;
          show(el.roomNote, '');
          renderPeople(body.members, body.count);
        },
        function () {
          if (!state.inRoom && state.room === room) show(el.roomNote, Text.roomUnavailable);
        },
      )
      .then(function () {
        if (!state.inRoom && state.room === room && !el.roomView.hidden) state.pollTimer = setTimeout(pollRoom, OUTSIDE_POLL_MS);
      });
  }

  function showOutside(reason) {
    state.inRoom = false;
    state.lostReason = reason;
    showRoom();
    pollRoom();
  }

  function setBusy(busy) {
    state.busy = busy;
    [el.join, el.outsideRejoin, el.rejoin].forEach(function (button) {
      button.disabled = busy;
    });
    el.join.textContent = busy ? Text.joinBusy : Text.joinLabel;
  }

  /* ---------- the connection ---------- */

  function isCurrent(connection) {
    return state.connection === connection && !connection.closed;
  }

  function retryConnection(connection, refreshToken) {
    connection.attempts += 1;
    var delay = Math.min(RETRY_MS * connection.attempts, RETRY_MAX_MS);
    setTimeout(function () {
      if (connection.closed) return;
      var ready = refreshToken ? fetchToken(connection.name) : Promise.resolve(connection);
      ready
        .then(function (login) {
          connection.token = login.token;
        }, function () {
          return null;
        })
        .then(function () {
          if (!connection.closed) connection.socket.connect();
        });
    }, delay);
  }

  function openConnection(name, login) {
    var connection = { name: name, userId: login.userId, token: login.token, socket: null, presence: null, closed: false, attempts: 0 };
    connection.socket = io({
      auth: function (send) {
        send({ token: connection.token });
      },
      reconnectionDelayMax: RETRY_MAX_MS,
    });
    connection.presence = PresenceClient.createPresenceClient(connection.socket, {
      heartbeatIntervalMs: state.settings.heartbeatIntervalMs,
      heartbeatJitterMs: state.settings.heartbeatJitterMs,
      onForceLeave: function (event) {
        if (isCurrent(connection)) onForceLeave(event);
      },
      onParticipants: function (event) {
        if (isCurrent(connection)) onParticipants(event);
      },
    });
    connection.socket.on('connect', function () {
      connection.attempts = 0;
      if (isCurrent(connection)) show(el.connection, '');
    });
    connection.socket.on('disconnect', function () {
      if (!isCurrent(connection)) return;
      state.disconnectedSinceJoin = true;
      show(el.connection, Text.connectionLost);
    });
    connection.socket.on('connect_error', function (err) {
      // A refused handshake is not retried by Socket.IO: a restarted server may not know the
      // old login (a new SESSION_SECRET) or may not be ready yet, so log in again and retry.
      if (!connection.socket.active && !connection.closed) retryConnection(connection, err.message === 'unauthorized');
    });
    return connection;
  }

  function closeConnection(connection) {
    connection.closed = true;
    connection.presence.close();
    connection.socket.close();
  }

  function whenConnected(connection) {
    if (connection.socket.connected) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        connection.socket.off('connect', onConnect);
        reject(userError('offline'));
      }, CONNECT_TIMEOUT_MS);
      function onConnect() {
        clearTimeout(timer);
        resolve();
      }
      connection.socket.once('connect', onConnect);
    });
  }

  /**
   * Resolves once connected as the person named `name`. Another name gets a new login and a
   * new connection, and the old one is closed only after the new one is up: a refused login
   * changes nothing.
   */
  function connectAs(name) {
    var current = state.connection;
    if (current && current.name === name) return whenConnected(current);
    return loadSettings()
      .then(function () {
        return fetchToken(name);
      })
      .then(function (login) {
        var next = openConnection(name, login);
        return whenConnected(next).then(
          function () {
            if (current) closeConnection(current);
            state.connection = next;
          },
          function (err) {
            closeConnection(next);
            throw err;
          },
        );
      });
  }

  /* ---------- joining, leaving, losing the room ---------- */

  /** The status this page asks to show: away while its tab is hidden. */
  function currentStatus() {
    return document.visibilityState === 'hidden' ? 'away' : 'here';
  }

  /** Tells the room when the tab is hidden or shown again; the others see "away". */
  function onVisibilityChange() {
    if (state.inRoom && state.room) state.connection.presence.update(state.room.id, { status: currentStatus() });
  }

  function join(name, room) {
    if (state.busy) return Promise.resolve();
    setBusy(true);
    showAlert('');
    announce(Text.joining(room.name));
    var status = currentStatus();
    return connectAs(name)
      .then(function () {
        return state.connection.presence.join(room.id, { data: { status: status } });
      })
      .then(function (ack) {
        if (!ack.ok) throw userError(ack.error);
        var mine = ack.members.filter(function (member) {
          return member.userId === state.connection.userId;
        })[0];
        state.me = personOf(mine || { userId: state.connection.userId, data: { name: name } });
        state.room = room;
        state.inRoom = true;
        state.lostReason = null;
        state.disconnectedSinceJoin = false;
        remember(name, room.name);
        showRoom();
        renderPeople(ack.members, ack.count);
        announce(Text.joined(room.name));
        if (currentStatus() !== status) onVisibilityChange();
      })
      .catch(function (err) {
        announce('');
        showAlert(err.message);
      })
      .then(function () {
        setBusy(false);
      });
  }

  function rejoin() {
    if (state.me && state.room) join(state.me.name, state.room);
  }

  function leave() {
    var room = state.room;
    if (!state.inRoom || !room) return;
    showLobby();
    state.connection.presence.leave(room.id).then(function (ack) {
      announce(ack.ok || ack.error === 'not-present' ? Text.left(room.name) : Text.leftUnconfirmed(room.name));
    });
  }

  function openDialog(reason, text) {
    el.reason.textContent = text;
    el.rejoin.textContent = Text.rejoinLabel(reason);
    el.dialog.dataset.reason = reason;
    el.dialog.returnValue = '';
    if (!el.dialog.open) el.dialog.showModal();
    el.rejoin.focus();
  }

  function onForceLeave(event) {
    if (!state.inRoom || !state.room || event.roomId !== state.room.id) return;
    var text = Text.reason(event.reason, state.room.name, state.disconnectedSinceJoin);
    showOutside(event.reason);
    openDialog(event.reason, text);
    announce(Text.removed(text));
  }

  function onParticipants(event) {
    if (state.inRoom && state.room && event.roomId === state.room.id) renderPeople(event.members, event.count);
  }

  /* ---------- the form ---------- */

  function readField(input, errorElement, messageOf, check) {
    var result = check(input.value);
    var message = result.ok ? '' : messageOf(result.error);
    show(errorElement, message);
    input.setAttribute('aria-invalid', String(!result.ok));
    return result;
  }

  function onSubmit(event) {
    event.preventDefault();
    var name = readField(el.name, el.nameError, Text.nameError, Names.checkName);
    var room = readField(el.room, el.roomError, Text.roomError, Names.nameToId);
    if (!name.ok) el.name.focus();
    else if (!room.ok) el.room.focus();
    else join(name.name, { id: room.id, name: room.name });
  }

  function clearFieldError(input, errorElement) {
    input.addEventListener('input', function () {
      show(errorElement, '');
      input.removeAttribute('aria-invalid');
    });
  }

  function start() {
    var saved = recall();
    if (typeof saved.name === 'string') el.name.value = saved.name;
    if (typeof saved.room === 'string') el.room.value = saved.room;
    el.form.addEventListener('submit', onSubmit);
    clearFieldError(el.name, el.nameError);
    clearFieldError(el.room, el.roomError);
    el.leave.addEventListener('click', leave);
    document.addEventListener('visibilitychange', onVisibilityChange);
    el.outsideRejoin.addEventListener('click', rejoin);
    el.outsideBack.addEventListener('click', showLobby);
    el.dialog.addEventListener('close', function () {
      if (el.dialog.returnValue === 'rejoin') rejoin();
    });
    setBusy(false);
    if (!el.name.value) el.name.focus();
  }

  start();
})();
