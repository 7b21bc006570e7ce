'use strict';

const crypto = require('node:crypto');
const { isValidId } = require('@presence/socketio');

/** How long a development token stays valid. */
const TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;

function sign(secret, body) {
  return crypto.createHmac('sha256', secret).update(body).digest('base64url');
}

/**
 * Issues a token for `userId`, with the profile of a login by name:
 * `<base64url JSON {user, name?, hue?, exp}>.<base64url HMAC-SHA256>`.
 * @param {string} secret
 * @param {string} userId a valid presence id
 * @param {{name: string, hue: number} | null} [profile] the display name and avatar hue, or null (a login by user id)
 * @param {number} [now=Date.now()]
 * @returns {string}
 */
function issueToken(secret, userId, profile = null, now = Date.now()) {
  if (!isValidId(userId)) throw new TypeError('invalid user id');
  const claims = profile ? { user: userId, name: profile.name, hue: profile.hue } : { user: userId };
  const body = Buffer.from(JSON.stringify({ ...claims, exp: now + TOKEN_LIFETIME_MS })).toString('base64url');
  return `${body}.${sign(secret, body)}`;
}

/**
 * Verifies a token made by {@link issueToken}.
 * @param {string} secret
 * @param {unknown} token
 * @param {number} [now=Date.now()]
 * @returns {{userId: string, profile: {name: string, hue: number} | null} | null} the user id and profile, or null for a missing,
 *   forged, malformed or expired token
 */
function verifyToken(secret, token, now = Date.now()) {
  if (typeof token !== 'string' || token.length > 1024) return null;
  const [body, signature, ...rest] = token.split('.');
  if (!body || !signature || rest.length > 0) return null;
  const expected = Buffer.from(sign(secret, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  let claims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!claims || !isValidId(claims.user) || !Number.isFinite(claims.exp) || claims.exp <= now) return null;
  const profile = typeof claims.name === 'string' && Number.isInteger(claims.hue) ? { name: claims.name, hue: claims.hue } : null;
  return { userId: claims.user, profile };
}

module.exports = { issueToken, verifyToken };
