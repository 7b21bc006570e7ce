/*
 * Names people type: display names and room names. People type them with spaces, accents and
 * symbols ("Ana María", "José", "a:b").
 *
 * A display name is presence data (the server stores it with the presence, from the login):
 * it is only normalized and limited to MAX_NAME_CHARS characters (checkName).
 *
 * A room name becomes the room's presence id (1-128 bytes of A-Z a-z 0-9 - _ . @ + = ~),
 * written so that it reads the same where it can: letters, digits and - . @ + = stay, a space
 * becomes "_", and every other byte of its UTF-8 becomes "~" and two hex digits ("Design
 * review" → "Design_review", "Café" → "Caf~C3~A9"; nameToId). The same name always gives the
 * same id; the page keeps the name it was given to show it.
 * Runs in browsers (window.LiveRoomNames) and in Node (require).
 */
(function (root, factory) {
  if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.LiveRoomNames = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var MAX_ID_BYTES = 128;
  /** The longest display name, in characters (code points). */
  var MAX_NAME_CHARS = 128;
  var KEPT = /^[A-Za-z0-9\-.@+=]$/;

  /** Trims, joins runs of blank characters into one space, drops control characters. */
  function normalizeName(raw) {
    return String(raw)
      .normalize('NFC')
      .replace(/\s+/gu, ' ')
      .replace(/\p{Cc}/gu, '')
      .trim();
  }

  function hexByte(byte) {
    return '~' + (byte < 16 ? '0' : '') + byte.toString(16).toUpperCase();
  }

  function encodeName(name) {
    var bytes = new TextEncoder().encode(name);
    var id = '';
    for (var i = 0; i < bytes.length; i++) {
      var char = String.fromCharCode(bytes[i]);
      if (bytes[i] < 0x80 && KEPT.test(char)) id += char;
      else if (char === ' ') id += '_';
      else id += hexByte(bytes[i]);
    }
    return id;
  }

  /**
   * A display name typed by a person, normalized.
   * @param {string} raw
   * @returns {{ok: true, name: string} | {ok: false, error: 'empty' | 'too-long'}}
   */
  function checkName(raw) {
    var name = normalizeName(raw);
    if (name === '') return { ok: false, error: 'empty' };
    if (Array.from(name).length > MAX_NAME_CHARS) return { ok: false, error: 'too-long' };
    return { ok: true, name: name };
  }

  /**
   * The presence id of a room name typed by a person.
   * @param {string} raw
   * @returns {{ok: true, name: string, id: string} | {ok: false, error: 'empty' | 'too-long'}}
   */
  function nameToId(raw) {
    var name = normalizeName(raw);
    if (name === '') return { ok: false, error: 'empty' };
    var id = encodeName(name);
    if (id.length > MAX_ID_BYTES) return { ok: false, error: 'too-long' };
    return { ok: true, name: name, id: id };
  }

  return {
    checkName: checkName,
    nameToId: nameToId,
    normalizeName: normalizeName,
    MAX_ID_BYTES: MAX_ID_BYTES,
  };
});
