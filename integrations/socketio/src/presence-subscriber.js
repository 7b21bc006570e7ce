'use strict';

const { eventListener, presenceEventPattern } = require('./presence-events');
const { closeClient } = require('./close-client');
const { RepeatedWarnings } = require('./warnings');

/** @typedef {import('./topology').Subscriber} Subscriber */

/**
 * The pub/sub side on a standalone server: a duplicate of the application's Redis connection
 * subscribed to `__presence@<db>__:*`. It hands every parsed event to `onEvent`, and calls
 * `onResubscribed` (every room) each time the connection is back (and subscribed again) after
 * a drop, since pub/sub delivers at most once and events of the gap are lost. (On a cluster,
 * see `ClusterSubscriber`.)
 * @implements {Subscriber}
 */
class PresenceSubscriber {
  /**
   * @param {import('redis').RedisClientType<any, any, any, any, any>} redis the application's client, duplicated here
   * @param {import('./topology').SubscriberOptions} options
   */
  constructor(redis, { db, onEvent, onResubscribed, logger }) {
    this.pattern = presenceEventPattern(db);
    this.listener = eventListener(onEvent);
    this.subscribed = false;
    this.client = redis.duplicate();
    /** A reconnecting client repeats its error at every attempt: logged once. */
    const warnings = new RepeatedWarnings(logger);
    this.client.on('error', (err) => warnings.warn(`presence: pub/sub connection: ${err.message}`));
    this.client.on('ready', () => {
      warnings.clear();
      if (this.subscribed) onResubscribed(undefined);
    });
  }

  /** Connects and subscribes; resolves once Redis has confirmed the subscription. */
  async start() {
    await this.client.connect();
    await this.client.pSubscribe(this.pattern, this.listener);
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
    await closeClient(this.client);
  }
}

exports.PresenceSubscriber = PresenceSubscriber;
