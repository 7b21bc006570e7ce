'use strict';

/** The longest delay `setTimeout` honours; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The shortest node lease: below it, a pause of the event loop for garbage collection could end it. */
const MIN_LEASE_MS = 1000;

/** The longest node lease `PRESENCE.LEASE` takes (24 hours). */
const MAX_LEASE_MS = 86400000;

/**
 * The checks of the options of `attachPresence`, each named after what it checks. Every check
 * returns the value it was given, or throws a `TypeError` that names the function and the
 * option: `attachPresence: options.maxUsers must be a positive integer (got 0)`.
 *
 * (`src/client.js` is also a plain browser script, so it carries its own copy of the same
 * checks.)
 */
class OptionChecks {
  /** @param {string} caller the public function whose options are checked */
  constructor(caller) {
    this.caller = caller;
  }

  /**
   * An integer of 1 or more (0 or more with `allowZero`).
   * @param {unknown} value
   * @param {string} name
   * @param {{allowZero?: boolean}} [options]
   * @returns {number}
   */
  positiveInteger(value, name, { allowZero = false } = {}) {
    if (Number.isInteger(value) && value >= (allowZero ? 0 : 1)) return /** @type {number} */ (value);
    return this.#fail(name, `a ${allowZero ? 'non-negative' : 'positive'} integer`, value);
  }

  /**
   * A timer delay: an integer of milliseconds from 1 (0 with `allowZero`) to 2147483647.
   * @param {unknown} value
   * @param {string} name
   * @param {{allowZero?: boolean}} [options]
   * @returns {number}
   */
  milliseconds(value, name, { allowZero = false } = {}) {
    if (Number.isInteger(value) && value >= (allowZero ? 0 : 1) && value <= MAX_TIMER_MS) return /** @type {number} */ (value);
    return this.#fail(name, `an integer number of milliseconds from ${allowZero ? 0 : 1} to ${MAX_TIMER_MS}`, value);
  }

  /**
   * A node lease: an integer of milliseconds from 1000 to 86400000 (the longest lease the
   * module takes).
   * @param {unknown} value
   * @param {string} name
   * @returns {number}
   */
  leaseMilliseconds(value, name) {
    if (Number.isInteger(value) && value >= MIN_LEASE_MS && value <= MAX_LEASE_MS) return /** @type {number} */ (value);
    return this.#fail(name, `an integer number of milliseconds from ${MIN_LEASE_MS} to ${MAX_LEASE_MS}`, value);
  }

  /**
   * A function.
   * @param {unknown} value
   * @param {string} name
   * @returns {Function}
   */
  callback(value, name) {
    if (typeof value === 'function') return value;
    return this.#fail(name, 'a function', value);
  }

  /**
   * A string.
   * @param {unknown} value
   * @param {string} name
   * @returns {string}
   */
  string(value, name) {
    if (typeof value === 'string') return value;
    return this.#fail(name, 'a string', value);
  }

  /**
   * An object with the methods `methods`; `what` says what it should be.
   * @param {unknown} value
   * @param {string} name
   * @param {{methods: string[], what: string}} expected
   * @returns {any}
   */
  withMethods(value, name, { methods, what }) {
    const holder = value !== null && (typeof value === 'object' || typeof value === 'function');
    if (holder && methods.every((method) => typeof value[method] === 'function')) {
      return value;
    }
    return this.#fail(name, what, value);
  }

  /** @returns {never} */
  #fail(name, expected, value) {
    throw new TypeError(`${this.caller}: options.${name} must be ${expected} (got ${describe(value)})`);
  }
}

/** A short description of a bad option's value for an error message. */
function describe(value) {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

module.exports = { OptionChecks, MAX_TIMER_MS };
