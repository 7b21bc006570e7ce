'use strict';

const { ErrorCode, PresenceError } = require('./errors');

/** The deepest nesting of arrays and objects a presence's data may have. */
const MAX_DEPTH = 16;

/** Keys refused anywhere in data, so that no application merging it can pollute a prototype. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Checks that `value` is one JSON value as JSON writes it back unchanged: null, a boolean, a
 * finite number, a string, an array or a plain object of those, at most {@link MAX_DEPTH}
 * levels deep, without a key of {@link FORBIDDEN_KEYS}; and that it holds at most `maxBytes`
 * values (each takes one byte of JSON at least, so the walk stays short for any payload).
 * @param {unknown} value
 * @param {number} maxBytes
 * @throws {PresenceError} `invalid-data` or `data-too-large`
 */
function checkShape(value, maxBytes) {
  const tooLarge = () => new PresenceError(ErrorCode.DATA_TOO_LARGE, `data is larger than ${maxBytes} bytes`);
  let budget = maxBytes;
  /** @type {Array<{value: unknown, depth: number}>} */
  const stack = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const item = /** @type {{value: unknown, depth: number}} */ (stack.pop());
    budget -= 1;
    if (budget < 0) throw tooLarge();
    const current = item.value;
    if (current === null || typeof current === 'boolean' || typeof current === 'string') continue;
    if (typeof current === 'number') {
      if (Number.isFinite(current)) continue;
      throw invalid('a number that is not finite');
    }
    if (typeof current !== 'object') throw invalid(`a value of type ${typeof current}`);
    if (item.depth >= MAX_DEPTH) throw invalid(`nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(current)) {
      if (stack.length + current.length > budget) throw tooLarge();
      for (const element of current) stack.push({ value: element, depth: item.depth + 1 });
      continue;
    }
    const proto = Object.getPrototypeOf(current);
    if (proto !== Object.prototype && proto !== null) throw invalid('an object that is not a plain object');
    const keys = Object.keys(current);
    if (stack.length + keys.length > budget) throw tooLarge();
    for (const key of keys) {
      if (FORBIDDEN_KEYS.has(key)) throw invalid(`the key ${key}`);
      stack.push({ value: /** @type {Record<string, unknown>} */ (current)[key], depth: item.depth + 1 });
    }
  }
}

/** @param {string} what */
function invalid(what) {
  return new PresenceError(ErrorCode.INVALID_DATA, `data must be one JSON value (found ${what})`);
}

/**
 * `value` written as JSON, once checked: one JSON value of at most `maxBytes` bytes of UTF-8.
 * @param {unknown} value
 * @param {number} maxBytes
 * @returns {string}
 * @throws {PresenceError} `invalid-data` or `data-too-large`
 */
function encodeData(value, maxBytes) {
  checkShape(value, maxBytes);
  const json = JSON.stringify(value);
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) throw new PresenceError(ErrorCode.DATA_TOO_LARGE, `data is ${bytes} bytes, more than ${maxBytes}`);
  return json;
}

/**
 * The data of a member as `PRESENCE.LIST … WITHDATA` gives it: the parsed JSON, or null when
 * it has none.
 * @param {unknown} reply a bulk string or a null reply
 * @returns {import('./server').PresenceData | null}
 */
function decodeData(reply) {
  if (reply === null || reply === undefined) return null;
  try {
    return JSON.parse(String(reply));
  } catch {
    return null;
  }
}

/**
 * What a request asks to store, and what the application's `presenceData` decides is stored
 * instead (see `AttachPresenceOptions.presenceData`).
 */
class PresenceDataPolicy {
  /**
   * @param {NonNullable<import('./server').AttachPresenceOptions<any>['presenceData']>} presenceData
   * @param {number} maxBytes
   */
  constructor(presenceData, maxBytes) {
    this.presenceData = presenceData;
    this.maxBytes = maxBytes;
  }

  /**
   * Checks the data a client sent (before anything else sees it).
   * @param {unknown} requested `undefined` when the request carried none
   * @throws {PresenceError} `invalid-data` or `data-too-large`
   */
  checkRequested(requested) {
    if (requested !== undefined) encodeData(requested, this.maxBytes);
  }

  /**
   * The data to store, as JSON, or null for none.
   * @param {unknown} socket
   * @param {unknown} requested the client's data, checked by {@link checkRequested}
   * @param {import('./server').PresenceDataContext} context
   * @returns {Promise<string | null>}
   * @throws {PresenceError} `invalid-data` or `data-too-large` when the decided value is not data
   */
  async decide(socket, requested, context) {
    const decided = await this.presenceData(socket, /** @type {import('./server').PresenceData | undefined} */ (requested), context);
    return decided === null || decided === undefined ? null : encodeData(decided, this.maxBytes);
  }
}

exports.PresenceDataPolicy = PresenceDataPolicy;
exports.encodeData = encodeData;
exports.decodeData = decodeData;
