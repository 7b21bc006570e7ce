'use strict';

const { errorMessage } = require('../warnings');

/** The most presences one sweep call removes: a backlog drains in calls of this size, back to back. */
const SWEEP_LIMIT = 1000;

/** Keys one reconcile call scans. */
const RECONCILE_COUNT = 1000;

/**
 * The sweep of the script engine (SPEC §13), which has no timer inside Redis: every app server
 * runs it, every `intervalMs`, on every shard, and one server at a time sweeps a shard, under
 * the shard's sweep lease (`presence:sweep-lease`, held for three intervals and renewed by each
 * call of its holder, taken over by another server within that time once the holder stops).
 * A call removes at most {@link SWEEP_LIMIT} presences and publishes as the module's sweeper
 * would; a shard with more is called again at once. Before its first sweep, the server
 * reconciles every shard's index with its keys (`reconcile_all`: presences written by clients
 * that bypass the engine).
 */
class ScriptSweeper {
  /**
   * @param {object} options
   * @param {import('../presence-commands').PresenceCommands} options.commands what sends the calls
   * @param {import('./script').ScriptCalls} options.calls the script engine's calls
   * @param {() => string[]} options.shards the tags of the shards' keys (`''` on one server)
   * @param {() => string} options.owner who holds the sweep lease: this server's node now
   * @param {number} options.intervalMs
   * @param {import('../server').PresenceLogger} options.logger
   */
  constructor({ commands, calls, shards, owner, intervalMs, logger }) {
    this.commands = commands;
    this.calls = calls;
    this.shards = shards;
    this.owner = owner;
    this.intervalMs = intervalMs;
    this.leaseMs = Math.max(1000, 3 * intervalMs);
    this.logger = logger;
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined;
    this.closed = false;
    /** @type {Promise<void>} the pass under way */
    this.running = Promise.resolve();
    /** Whether the last pass failed (its warning is logged once per run of failures). */
    this.failing = false;
  }

  /** Reconciles every shard, then sweeps every `intervalMs` until {@link ScriptSweeper#close}. */
  start() {
    this.running = this.#reconcile().then(() => this.#pass());
  }

  /** Stops sweeping; resolves once the pass under way ended. */
  async close() {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  async #reconcile() {
    try {
      await Promise.all(
        this.shards().map(async (tag) => {
          let cursor = '0';
          do {
            const reply = await this.commands.call(this.calls.shardRoute(tag), this.calls.reconcileAll(tag, cursor, RECONCILE_COUNT));
            cursor = String(/** @type {unknown[]} */ (reply)[0]);
          } while (cursor !== '0' && !this.closed);
        }),
      );
    } catch (err) {
      this.logger.warn(`presence: the reconcile of the index with the keys at start failed: ${errorMessage(err)}`);
    }
  }

  async #pass() {
    if (this.closed) return;
    try {
      await Promise.all(this.shards().map((tag) => this.#sweepShard(tag)));
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn(`presence: the sweep failed (tried again every ${this.intervalMs} ms): ${errorMessage(err)}`);
      this.failing = true;
    }
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.running = this.#pass();
    }, this.intervalMs);
    this.timer.unref();
  }

  /** @param {string} tag */
  async #sweepShard(tag) {
    while (!this.closed) {
      const reply = await this.commands.call(this.calls.shardRoute(tag), this.calls.sweep(tag, this.owner(), this.leaseMs, SWEEP_LIMIT));
      const removed = Number(reply);
      if (removed < SWEEP_LIMIT) return;
    }
  }
}

exports.ScriptSweeper = ScriptSweeper;
