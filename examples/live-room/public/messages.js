/*
 * Every sentence the live-room page's script shows, in one place (the fixed labels and hints
 * are in index.html). Codes from the server (error codes of
 * acknowledgements, force-leave reasons) are turned into words here and nowhere else.
 * Runs in browsers (window.LiveRoomMessages) and in Node (require).
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.LiveRoomMessages = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var NAME_ERRORS = {
    empty: 'Please enter your name.',
    'too-long': 'That name is too long. Please shorten it to 128 characters or fewer.',
  };

  var ROOM_ERRORS = {
    empty: 'Please enter the name of a room.',
    'too-long': 'That room name is too long. Please shorten it.',
  };

  var REQUEST_ERRORS = {
    unavailable: 'The server cannot reach its database right now. Please try again in a moment.',
    'shutting-down': 'The server is restarting. Please try again in a few seconds.',
    timeout: 'The server did not answer in time. Check your connection and try again.',
    unauthorized: 'Your sign-in has expired. Please reload the page.',
    'invalid-room': 'That room name cannot be used. Please choose another one.',
    offline: 'Cannot reach the server. Check your connection and try again.',
  };
  var REQUEST_ERROR_OTHER = 'Something went wrong on the server. Please try again.';

  /** Why the page is not in the room any more, by force-leave reason. */
  var REASONS = {
    replaced: function (room) {
      return room + ' is open in another tab or on another device. You can be in a room from one place at a time.';
    },
    stale: function (room) {
      return 'This page stopped checking in with the server for too long (a sleeping computer or a lost connection), so you were taken out of ' + room + '.';
    },
    expired: function (room) {
      return 'Your place in ' + room + ' timed out after a long time without a check-in from this page.';
    },
    'node-down': function (room) {
      return 'The server you were connected to stopped unexpectedly, so everyone on it left ' + room + '.';
    },
    'not-present': function (room, reconnected) {
      if (reconnected) return 'The connection to the server was interrupted (the server probably restarted) and your place in ' + room + ' was not kept.';
      return 'The server no longer had your place in ' + room + '.';
    },
    reset: function () {
      return 'The room data was cleared (the database restarted or was emptied), so everyone has to join again.';
    },
    deleted: function (room) {
      return 'You were removed from ' + room + ' by the server.';
    },
    evicted: function (room) {
      return 'The server ran short of memory and dropped your place in ' + room + '.';
    },
    'no-ttl': function (room) {
      return 'Your place in ' + room + ' was found damaged and removed.';
    },
  };

  function plural(count, one, many) {
    return count === 1 ? one : many;
  }

  return {
    nameError: function (code) {
      return NAME_ERRORS[code];
    },
    roomError: function (code) {
      return ROOM_ERRORS[code];
    },
    requestError: function (code) {
      return REQUEST_ERRORS[code] || REQUEST_ERROR_OTHER;
    },
    /**
     * @param {string} reason a force-leave reason
     * @param {string} room the room's name as shown
     * @param {boolean} reconnected whether the connection was lost and found again since joining
     */
    reason: function (reason, room, reconnected) {
      var text = REASONS[reason];
      return text ? text(room, reconnected) : 'You were taken out of ' + room + '.';
    },
    /** The dialog's main button: take the room back from the other tab, or join again. */
    rejoinLabel: function (reason) {
      return reason === 'replaced' ? 'Use here' : 'Join again';
    },
    joinLabel: 'Join room',
    joinBusy: 'Joining…',
    hereAs: function (name) {
      return 'You are here as ' + name + '.';
    },
    joining: function (room) {
      return 'Joining ' + room + '…';
    },
    joined: function (room) {
      return 'You joined ' + room + '.';
    },
    left: function (room) {
      return 'You left ' + room + '.';
    },
    leftUnconfirmed: function (room) {
      return 'You left ' + room + '. The server could not confirm it, so the others may still see you for a minute or two.';
    },
    removed: function (reasonText) {
      return 'You are not in the chatroom. ' + reasonText;
    },
    connectionLost: 'Connection lost. Reconnecting…',
    count: function (count) {
      return plural(count, 'person in this room', 'people in this room');
    },
    more: function (count) {
      return '…and ' + count + ' more';
    },
    nobody: 'Nobody is in this room right now.',
    you: 'you',
    away: 'away',
    youElsewhere: 'you, in another tab or device',
    notInRoom: 'You are not in this room.',
    roomUnavailable: 'The list could not be updated. Trying again…',
  };
});
