'use strict';

const { parsePresenceEvent, presenceEventPattern } = require('./presence-events');

/** How long a graceful close of the pub/sub connection may take before it is cut. */
const CLOSE_TIMEOUT_MS = 1000;

/**
 * The pub/sub side on a standalone server: a duplicate of the application's Redis connection
 * subscribed to `__presence@<db>__:*`. It hands every parsed event to `onEvent`, and calls
 * `onResubscribed` (every room) each time the connection is back (and subscribed again) after
 * a drop, since pub/sub delivers at most once and events of the gap are lost. (On a cluster,
 * see `ClusterSubscriber`.)
 */
class PresenceSubscriber {
  /**
   * @param {import('redis').RedisClientType} redis the application's client, duplicated here
   * @param {{db: number, onEvent: (event: object) => void, onResubscribed: (rooms: undefined) => void, logger: Console}} options
   */
  constructor(redis, { db, onEvent, onResubscribed, logger }) {
    this.pattern = presenceEventPattern(db);
    this.onEvent = onEvent;
    this.onResubscribed = onResubscribed;
    this.logger = logger;
    this.subscribed = false;
    this.client = redis.duplicate();
    /** The error last logged: a reconnecting client repeats it at every attempt. */
    this.lastError = null;
    this.client.on('error', (err) => {
      if (err.message === this.lastError) return;
      this.lastError = err.message;
      this.logger.warn(`presence: pub/sub connection: ${err.message}`);
    });
    this.client.on('ready', () => {
      this.lastError = null;
      if (this.subscribed) this.onResubscribed(undefined);
    });
  }

  /** Connects and subscribes; resolves once Redis has confirmed the subscription. */
  async start() {
    await this.client.connect();
    await this.client.pSubscribe(this.pattern, (message, channel) => this.#handle(channel, message));
    this.subscribed = true;
  }

  /**
   * The pattern covers every room: nothing to subscribe per room on a standalone server.
   * @param {string} _roomId
   * @param {number} _timeoutMs
   * @returns {Promise<void>}
   */
  watch(_roomId, _timeoutMs) {
    return Promise.resolve();
  }

  /** @param {string} _roomId */
  unwatch(_roomId) {}

  /** Closes the connection (at once when Redis is unreachable). */
  async close() {
    this.subscribed = false;
    if (!this.client.isOpen) return;
    if (!this.client.isReady) {
      this.client.destroy();
      return;
    }
    let timer;
    const deadlinePromise = new Promise((resolve) => {
      timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
    });
    await Promise.race([this.client.close().catch(() => {}), deadlinePromise]);
    clearTimeout(timer);
    if (this.client.isOpen) this.client.destroy();
  }

  #handle(channel, message) {
    const event = parsePresenceEvent(channel, message);
    if (event) this.onEvent(event);
  }
}

module.exports = { PresenceSubscriber };
