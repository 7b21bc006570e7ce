/* The live-room page: login, join and leave, the live participant list and the force-leave dialog. */
(function () {
  'use strict';

  var elements = {
    form: document.getElementById('join-form'),
    name: document.getElementById('name'),
    room: document.getElementById('room'),
    join: document.getElementById('join'),
    leave: document.getElementById('leave'),
    status: document.getElementById('status'),
    count: document.getElementById('count'),
    users: document.getElementById('users'),
    truncated: document.getElementById('truncated'),
    dialog: document.getElementById('force-leave-dialog'),
    rejoin: document.getElementById('rejoin'),
  };

  var settings = null;
  var socket = null;
  var presence = null;
  var userId = null;
  /** True once the current socket was connected: a later refusal is a restarted server's. */
  var wasConnected = false;
  /** The room this page is in, or null. */
  var currentRoom = null;
  /** The room the dialog offers to join again. */
  var lostRoom = null;

  function setStatus(text, isError) {
    elements.status.textContent = text;
    elements.status.classList.toggle('error', Boolean(isError));
  }

  function render(users, count, truncated) {
    elements.users.replaceChildren.apply(
      elements.users,
      users.map(function (user) {
        var item = document.createElement('li');
        item.textContent = user;
        if (user === userId) item.className = 'me';
        return item;
      }),
    );
    elements.count.textContent = String(count);
    elements.truncated.hidden = !truncated;
  }

  function setRoom(roomId) {
    currentRoom = roomId;
    elements.leave.disabled = roomId === null;
    if (roomId === null) render([], 0, false);
  }

  function loadSettings() {
    if (settings) return Promise.resolve(settings);
    return fetch('/api/config')
      .then(function (res) {
        return res.json();
      })
      .then(function (body) {
        settings = body;
        return settings;
      });
  }

  function onForceLeave(event) {
    if (event.roomId !== currentRoom) return;
    lostRoom = event.roomId;
    setRoom(null);
    setStatus('Removed from room ' + event.roomId + ' (' + event.reason + ').', true);
    elements.dialog.dataset.reason = event.reason;
    elements.dialog.returnValue = '';
    if (!elements.dialog.open) elements.dialog.showModal();
  }

  function onParticipants(event) {
    if (event.roomId === currentRoom) render(event.users, event.count, event.truncated);
  }

  /** The development login: resolves a token for `name`. */
  function fetchToken(name) {
    return fetch('/api/token?user=' + encodeURIComponent(name)).then(function (res) {
      if (!res.ok) throw new Error('That name is not allowed: use 1-128 of A-Z a-z 0-9 - _ . @ + = ~');
      return res.json().then(function (body) {
        return body.token;
      });
    });
  }

  /** Connects as `name` (a new login when the name changed); resolves once connected. */
  function connect(name) {
    if (socket && userId === name && socket.connected) return Promise.resolve();
    if (socket) {
      presence.close();
      socket.close();
      socket = null;
      setRoom(null);
    }
    return loadSettings()
      .then(function () {
        return fetchToken(name);
      })
      .then(function (token) {
        userId = name;
        wasConnected = false;
        var current = io({ auth: { token: token } });
        socket = current;
        presence = PresenceClient.createPresenceClient(socket, {
          heartbeatIntervalMs: settings.heartbeatIntervalMs,
          heartbeatJitterMs: settings.heartbeatJitterMs,
          onForceLeave: onForceLeave,
          onParticipants: onParticipants,
        });
        socket.on('disconnect', function () {
          setStatus('Connection lost, reconnecting…', true);
        });
        socket.io.on('reconnect', function () {
          setStatus(currentRoom ? 'Reconnected.' : 'Reconnected. Not in a room.');
        });
        socket.on('connect_error', function () {
          // A restarted server may refuse the old login (a new SESSION_SECRET) or not be ready
          // yet; Socket.IO does not retry a refused connection by itself, so log in again.
          if (current.active || !wasConnected || socket !== current) return;
          setTimeout(function () {
            fetchToken(userId).then(function (token) {
              current.auth = { token: token };
              current.connect();
            }, function () {
              current.connect();
            });
          }, 1000);
        });
        socket.on('connect', function () {
          wasConnected = true;
        });
        return new Promise(function (resolve, reject) {
          socket.once('connect', resolve);
          socket.once('connect_error', function (err) {
            reject(new Error('Cannot connect: ' + err.message));
          });
        });
      });
  }

  function join(name, roomId) {
    elements.join.disabled = true;
    setStatus('Joining ' + roomId + '…');
    return connect(name)
      .then(function () {
        if (currentRoom !== null && currentRoom !== roomId) return presence.leave(currentRoom);
        return null;
      })
      .then(function () {
        return presence.join(roomId);
      })
      .then(function (ack) {
        if (!ack.ok) throw new Error('Cannot join: ' + ack.error);
        setRoom(roomId);
        render(ack.users, ack.count, ack.truncated);
        setStatus('In room ' + roomId + ' as ' + userId + '.');
      })
      .catch(function (err) {
        setStatus(err.message, true);
      })
      .then(function () {
        elements.join.disabled = false;
      });
  }

  elements.form.addEventListener('submit', function (event) {
    event.preventDefault();
    join(elements.name.value.trim(), elements.room.value.trim());
  });

  elements.leave.addEventListener('click', function () {
    var roomId = currentRoom;
    if (roomId === null) return;
    setRoom(null);
    presence.leave(roomId).then(function (ack) {
      setStatus(ack.ok ? 'Left room ' + roomId + '.' : 'Left room ' + roomId + ' (' + ack.error + ').');
    });
  });

  elements.dialog.addEventListener('close', function () {
    if (elements.dialog.returnValue === 'rejoin' && lostRoom !== null) join(userId, lostRoom);
  });
})();
