'use strict';

/** The longest delay `setTimeout` honours; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The shortest node lease: below it, a pause of the event loop for garbage collection could end it. */
const MIN_LEASE_MS = 1000;

/** The longest node lease `PRESENCE.LEASE` takes (24 hours). */
const MAX_LEASE_MS = 86400000;

/** The longest presence TTL in seconds (ten years, as the module's `presence.ttl`). */
const MAX_TTL_S = 315360000;

/** The largest `presence.max-data` the module takes. */
const MAX_DATA_BYTES = 65536;

/**
 * @typedef {import('./server').AttachPresenceOptions} AttachPresenceOptions
 */

/**
 * The options of `attachPresence` with their defaults, checked.
 * @template [TSocket=import('socket.io').Socket]
 * @typedef {Required<import('./server').AttachPresenceOptions<TSocket>>} PresenceSettings
 */

/**
 * The defaults of the options of `attachPresence` (`server.d.ts` declares and documents them):
 * every optional option has one, but `db`, whose default is the client's database.
 * @satisfies {Required<Omit<AttachPresenceOptions, 'redis' | 'getUserId' | 'db'>>}
 */
const DEFAULTS = {
  namespace: '/',
  participantsIntervalMs: 250,
  maxUsers: 200,
  commandTimeoutMs: 2000,
  nodeLeaseMs: 10000,
  presenceData: () => null,
  maxDataBytes: 1024,
  logger: console,
  engine: 'auto',
  ttl: 21600,
  staleAfter: 90,
  sweepIntervalMs: 1000,
};

/**
 * Tells whether `value` is an integer.
 * @param {unknown} value
 * @returns {value is number}
 */
function isInteger(value) {
  return Number.isInteger(value);
}

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
    if (isInteger(value) && value >= (allowZero ? 0 : 1)) return value;
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
    if (isInteger(value) && value >= (allowZero ? 0 : 1) && value <= MAX_TIMER_MS) return value;
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
    if (isInteger(value) && value >= MIN_LEASE_MS && value <= MAX_LEASE_MS) return value;
    return this.#fail(name, `an integer number of milliseconds from ${MIN_LEASE_MS} to ${MAX_LEASE_MS}`, value);
  }

  /**
   * An integer from `min` to `max`.
   * @param {unknown} value
   * @param {string} name
   * @param {number} min
   * @param {number} max
   * @returns {number}
   */
  integerBetween(value, name, min, max) {
    if (isInteger(value) && value >= min && value <= max) return value;
    return this.#fail(name, `an integer from ${min} to ${max}`, value);
  }

  /**
   * One of `values`.
   * @template {string} T
   * @param {unknown} value
   * @param {string} name
   * @param {readonly T[]} values
   * @returns {T}
   */
  oneOf(value, name, values) {
    const found = values.find((candidate) => candidate === value);
    if (found !== undefined) return found;
    return this.#fail(name, `one of ${values.map((v) => `'${v}'`).join(', ')}`, value);
  }

  /**
   * A function.
   * @template {Function} T
   * @param {T | undefined} value
   * @param {string} name
   * @returns {T}
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
   * @template T
   * @param {T} value
   * @param {string} name
   * @param {{methods: string[], what: string}} expected
   * @returns {NonNullable<T>}
   */
  withMethods(value, name, { methods, what }) {
    if (hasMethods(value, methods)) return value;
    return this.#fail(name, what, value);
  }

  /**
   * @param {string} name
   * @param {string} expected
   * @param {unknown} value
   * @returns {never}
   */
  #fail(name, expected, value) {
    throw new TypeError(`${this.caller}: options.${name} must be ${expected} (got ${describe(value)})`);
  }
}

/**
 * Tells whether `value` is an object (or function) with a function under each name of `methods`.
 * @template T
 * @param {T} value
 * @param {string[]} methods
 * @returns {value is NonNullable<T>}
 */
function hasMethods(value, methods) {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const object = /** @type {Record<string, unknown>} */ (value);
  return methods.every((method) => typeof object[method] === 'function');
}

/**
 * The database a node-redis client was created for (`options.database`), if it says.
 * @param {import('./server').PresenceRedisClient} redis
 * @returns {number | undefined}
 */
function clientDatabase(redis) {
  return 'options' in redis ? redis.options?.database : undefined;
}

/**
 * The options of `attachPresence` with their defaults, checked.
 * @template TSocket
 * @param {Partial<import('./server').AttachPresenceOptions<TSocket>>} options
 * @returns {PresenceSettings<TSocket>}
 * @throws {TypeError} naming the first bad option
 */
function readOptions(options) {
  const check = new OptionChecks('attachPresence');
  const redis = check.withMethods(options.redis, 'redis', {
    methods: ['sendCommand', 'duplicate'],
    what: 'a connected node-redis client',
  });
  return {
    redis,
    getUserId: check.callback(options.getUserId, 'getUserId'),
    namespace: check.string(options.namespace ?? DEFAULTS.namespace, 'namespace'),
    db: check.positiveInteger(options.db ?? clientDatabase(redis) ?? 0, 'db', { allowZero: true }),
    participantsIntervalMs: check.milliseconds(
      options.participantsIntervalMs ?? DEFAULTS.participantsIntervalMs,
      'participantsIntervalMs',
      {
        allowZero: true,
      },
    ),
    maxUsers: check.positiveInteger(options.maxUsers ?? DEFAULTS.maxUsers, 'maxUsers'),
    commandTimeoutMs: check.milliseconds(options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs, 'commandTimeoutMs'),
    nodeLeaseMs: check.leaseMilliseconds(options.nodeLeaseMs ?? DEFAULTS.nodeLeaseMs, 'nodeLeaseMs'),
    presenceData: check.callback(options.presenceData ?? DEFAULTS.presenceData, 'presenceData'),
    maxDataBytes: check.integerBetween(options.maxDataBytes ?? DEFAULTS.maxDataBytes, 'maxDataBytes', 1, MAX_DATA_BYTES),
    logger: check.withMethods(options.logger ?? DEFAULTS.logger, 'logger', {
      methods: ['warn'],
      what: 'an object with a warn(message) method',
    }),
    engine: check.oneOf(options.engine ?? DEFAULTS.engine, 'engine', /** @type {const} */ (['auto', 'module', 'script'])),
    ttl: check.integerBetween(options.ttl ?? DEFAULTS.ttl, 'ttl', 1, MAX_TTL_S),
    staleAfter: check.integerBetween(options.staleAfter ?? DEFAULTS.staleAfter, 'staleAfter', 0, MAX_TTL_S),
    sweepIntervalMs: check.integerBetween(options.sweepIntervalMs ?? DEFAULTS.sweepIntervalMs, 'sweepIntervalMs', 10, 3600000),
  };
}

/**
 * A short description of a bad option's value for an error message.
 * @param {unknown} value
 * @returns {string}
 */
function describe(value) {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

exports.readOptions = readOptions;
