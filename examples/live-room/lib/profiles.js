'use strict';

const crypto = require('node:crypto');
const { checkName } = require('../public/names');

/** The statuses a page may ask for; anything else is stored as `here`. */
const STATUSES = new Set(['here', 'away']);

/**
 * The profile of a person who logs in with a display name: an opaque user id made from the
 * name (the same name is the same person, as in the demo's development login), the name as
 * shown, and the hue of the avatar. Nothing of the name can be read back from the id: the
 * name and the hue travel as presence data.
 * @param {unknown} raw the name as typed
 * @returns {{userId: string, name: string, hue: number} | null} null for an empty or too long name
 */
function profileOf(raw) {
  if (typeof raw !== 'string') return null;
  const checked = checkName(raw);
  if (!checked.ok) return null;
  const { name } = checked;
  const digest = crypto.createHash('sha256').update(`live-room person\0${name}`).digest();
  return { userId: `u-${digest.subarray(0, 16).toString('base64url')}`, name, hue: digest.readUInt16BE(16) % 360 };
}

/**
 * The `presenceData` of the demo: the name and the hue come from the socket's login (its
 * token), never from the page; the page decides only its status (`here`, or `away` while its
 * tab is hidden). A socket logged in by user id alone has no name: it stores only a status it
 * asked for, and is listed by its id.
 * @param {{profile?: {name: string, hue: number} | null}} session the socket's `socket.data`
 * @param {unknown} requested the data the page asked for
 * @returns {{name?: string, hue?: number, status: string} | null}
 */
function presenceData(session, requested) {
  const asked = requested !== null && typeof requested === 'object' && !Array.isArray(requested) ? requested.status : undefined;
  const status = STATUSES.has(asked) ? asked : 'here';
  if (session.profile) return { name: session.profile.name, hue: session.profile.hue, status };
  return asked === undefined ? null : { status };
}

module.exports = { profileOf, presenceData };
