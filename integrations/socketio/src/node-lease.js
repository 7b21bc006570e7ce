'use strict';

const crypto = require('node:crypto');
const os = require('node:os');
const { ErrorCode, PresenceError } = require('./errors');
const { MAX_ID_BYTES } = require('./ids');
const { sleep } = require('./retry');
const { errorMessage } = require('./warnings');

/** Characters of the random part of a node id. */
const RANDOM_CHARS = 6;

/** Longest pause before a lease command that failed (a renewal, taking a new lease) is sent again. */
const RETRY_MS = 500;

/**
 * The share of the lease after which a lease found lost counts as expired (renewals came too
 * late or failed) rather than removed while renewals were on time (about every third of it).
 */
const EXPIRED_AFTER_SHARE = 0.8;

/** Characters a node id may not hold, each run of them written `-`. */
const NOT_ID_CHARS = /[^A-Za-z0-9\-_.@+=~]+/g;

/**
 * The fixed part of this process's node ids: its host name (characters outside the id rules
 * written `-`, cut so that the whole id fits in 128 bytes) and its pid, e.g. `web-1.7421.`.
 * @param {string} [hostname]
 * @param {number} [pid]
 * @returns {string}
 */
function nodeIdPrefix(hostname = os.hostname(), pid = process.pid) {
  const tail = `.${pid}.`;
  const host = hostname.replace(NOT_ID_CHARS, '-') || 'node';
  return host.slice(0, MAX_ID_BYTES - tail.length - RANDOM_CHARS) + tail;
}

/**
 * A new node id: `prefix` and a random part of six base-36 characters, e.g. `web-1.7421.k3f9x0`.
 * @param {string} prefix from {@link nodeIdPrefix}
 * @returns {string}
 */
function newNodeId(prefix) {
  return (
    prefix +
    crypto
      .randomInt(36 ** RANDOM_CHARS)
      .toString(36)
      .padStart(RANDOM_CHARS, '0')
  );
}

/**
 * The lease of one node (SPEC §10): taken before the server accepts joins, renewed about every
 * third of `leaseMs`, released last on shutdown. Every presence written through the node lives
 * only while the lease does, so that the module removes them within the lease when this
 * process dies. On a cluster the lease is one key per master (see `ClusterLeaseShards`), all
 * renewed together.
 *
 * When the lease is found lost (a renewal answered `0`, renewals failed for longer than the
 * lease, or the server reports a sign of it through {@link NodeLease#lost}), every presence
 * written through the node is gone. The lease then releases the old node (a renewal that
 * answered `0` took it again, which would bring back the presences not yet swept), calls
 * `onLost` and takes a new lease under a fresh node id; the old id is never used again. On a
 * cluster only a master where this server holds presences can lose the lease: a `0` from
 * another one (a master new to this node, or whose key expired while it held nothing here)
 * simply takes the lease there.
 *
 * `onLost` learns whether the lease expired (no successful renewal for about the lease: the
 * event loop was blocked, or Redis did not answer) or was removed while renewals were on time
 * (the database was flushed or restarted empty, or the key was deleted or evicted).
 */
class NodeLease {
  /**
   * @param {object} options
   * @param {import('./presence-commands').PresenceCommands} options.commands
   * @param {number} options.leaseMs
   * @param {import('./server').PresenceLogger} options.logger
   * @param {(loss: LeaseLoss) => void} options.onLost called synchronously when the lease is
   *   found lost, once `nodeId` names the fresh node
   * @param {import('./topology').LeaseShards} options.shards where the lease keys live
   * @param {string} [options.prefix] the fixed part of the node ids
   */
  constructor({ commands, leaseMs, logger, onLost, shards, prefix = nodeIdPrefix() }) {
    this.commands = commands;
    this.leaseMs = leaseMs;
    this.renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
    this.logger = logger;
    this.onLost = onLost;
    this.shards = shards;
    this.prefix = prefix;
    /** The pause before a lease command that failed is sent again. */
    this.retryMs = Math.min(RETRY_MS, this.renewEveryMs);
    /** The node the presences are written through now. */
    this.nodeId = newNodeId(prefix);
    /** `new`, `held`, `retaking` (lost; a lease for the fresh node is being taken) or `released`. */
    this.state = 'new';
    /**
     * The lease keys of the node by shard id: `renewedAt`, when the command that last took or
     * renewed it was sent (performance.now()); `failingSince`, when its renewals started failing
     * without an answer (null while Redis answers them); `taken`, whether the node held it since
     * it was last taken (a `0` from a key never taken is no loss).
     * @type {Map<string, LeaseKey>}
     */
    this.keys = new Map();
    /** When the next renewal is due (performance.now()). */
    this.dueAt = 0;
    /** How late the renewal timer fired at most since the last successful renewal: the event loop was blocked that long. */
    this.lateMs = 0;
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined;
    /** @type {Promise<void> | null} the renewal under way, if any */
    this.renewal = null;
    /** @type {Set<{resolve: (nodeId: string) => void, reject: (err: Error) => void}>} joins waiting for the lease to be taken again */
    this.waiters = new Set();
  }

  /** Takes the first lease; rejects with a {@link PresenceError} when Redis refuses or does not answer. */
  async start() {
    const sentAt = performance.now();
    await this.#takeEverywhere(this.nodeId);
    this.#held(sentAt);
  }

  /**
   * The node to write through, once the lease is held: at once, or after it was taken again
   * following a loss; rejects with `unavailable` after `timeoutMs` of waiting.
   * @param {number} timeoutMs
   * @returns {Promise<string>}
   */
  ready(timeoutMs) {
    if (this.state === 'held') return Promise.resolve(this.nodeId);
    if (this.state === 'released') return Promise.reject(new PresenceError(ErrorCode.SHUTTING_DOWN));
    return new Promise((resolve, reject) => {
      /** @type {NodeJS.Timeout} */
      let timer;
      const waiter = {
        /** @param {string} nodeId */
        resolve: (nodeId) => {
          clearTimeout(timer);
          resolve(nodeId);
        },
        /** @param {Error} err */
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new PresenceError(ErrorCode.UNAVAILABLE, `the node lease is being taken again after it was lost (waited ${timeoutMs} ms)`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * Renews now (or waits for the renewal under way), so that a lease lost before this call is
   * noticed, and `onLost` has run, when the returned promise settles. Never rejects.
   * @returns {Promise<void>}
   */
  settle() {
    return this.state === 'held' ? this.#renew() : Promise.resolve();
  }

  /**
   * A sign from outside that the lease of `nodeId` ended (a join answered NOLEASE, a
   * `node-down` event named it); ignored unless `nodeId` is the node held now.
   * @param {string} nodeId
   * @param {string} sign what showed it, for the log
   */
  lost(nodeId, sign) {
    const key = this.#stalest();
    if (key) this.#lose(nodeId, sign, key);
  }

  /**
   * Stops renewing and deletes the lease (`PRESENCE.LEASE node 0`, on every master of a
   * cluster): every presence still written through the node ends with it. Rejects with a
   * {@link PresenceError} when Redis does not answer (the lease then ends by itself within
   * `leaseMs`).
   * @returns {Promise<void>}
   */
  async release() {
    if (this.state === 'released') return;
    this.state = 'released';
    clearTimeout(this.timer);
    for (const waiter of this.waiters) waiter.reject(new PresenceError(ErrorCode.SHUTTING_DOWN));
    this.waiters.clear();
    await this.#releaseEverywhere(this.nodeId);
  }

  /**
   * Takes the lease of `nodeId` on every shard; rejects with the first failure.
   * @param {string} nodeId
   */
  async #takeEverywhere(nodeId) {
    const shards = this.shards.current();
    await Promise.all(shards.map((shard) => this.commands.lease(shard.key(nodeId), this.leaseMs)));
    this.keys = new Map(shards.map((shard) => [shard.id, { ...shard, renewedAt: 0, failingSince: null, taken: true }]));
  }

  /**
   * Releases the lease of `nodeId` on every shard; rejects with the first failure once all were tried.
   * @param {string} nodeId
   */
  async #releaseEverywhere(nodeId) {
    const results = await Promise.allSettled(this.shards.current().map((shard) => this.commands.lease(shard.key(nodeId), 0)));
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /** @param {number} sentAt when the command that took the lease was sent */
  #held(sentAt) {
    this.state = 'held';
    for (const key of this.keys.values()) key.renewedAt = sentAt;
    this.lateMs = 0;
    this.#schedule(sentAt + this.renewEveryMs);
    for (const waiter of this.waiters) waiter.resolve(this.nodeId);
    this.waiters.clear();
  }

  /** @param {number} dueAt when the next renewal is due (performance.now()) */
  #schedule(dueAt) {
    clearTimeout(this.timer);
    this.dueAt = dueAt;
    this.timer = setTimeout(
      () => {
        this.lateMs = Math.max(this.lateMs, performance.now() - dueAt);
        this.#renew();
      },
      Math.max(0, dueAt - performance.now()),
    );
  }

  /** @returns {Promise<void>} */
  #renew() {
    if (!this.renewal) {
      this.renewal = this.#renewOnce().finally(() => {
        this.renewal = null;
      });
    }
    return this.renewal;
  }

  /**
   * Renews the lease on every shard (keys of shards new to the map are taken). The lease is
   * lost when a shard where this server holds presences answers that the node held no live
   * lease there, or has not answered a renewal for the whole lease.
   */
  async #renewOnce() {
    const nodeId = this.nodeId;
    const sentAt = performance.now();
    /** @type {Map<string, LeaseKey>} */
    const keys = new Map();
    for (const shard of this.shards.current()) {
      keys.set(shard.id, {
        id: shard.id,
        renewedAt: sentAt,
        failingSince: null,
        taken: false,
        ...this.keys.get(shard.id),
        address: shard.address,
        key: shard.key,
      });
    }
    this.keys = keys;
    const results = await Promise.allSettled([...keys.values()].map((key) => this.commands.lease(key.key(nodeId), this.leaseMs)));
    if (this.state !== 'held' || nodeId !== this.nodeId) return;
    const now = performance.now();
    let failing = false;
    for (const [i, key] of [...keys.values()].entries()) {
      const result = results[i];
      const where = key.address === null ? '' : ` on the master at ${key.address}`;
      if (result.status === 'rejected') {
        failing = true;
        key.failingSince ??= sentAt;
        if (key.taken && now - key.renewedAt >= this.leaseMs && this.shards.holdsPresences(key.address)) {
          this.#lose(nodeId, `the last renewals${where} failed: ${errorMessage(result.reason)}`, key);
          return;
        }
        continue;
      }
      if (!result.value && key.taken && this.shards.holdsPresences(key.address)) {
        this.#lose(nodeId, `a renewal found no live lease${where}`, key);
        return;
      }
      key.renewedAt = sentAt;
      key.failingSince = null;
      key.taken = true;
    }
    if (!failing) this.lateMs = 0;
    const nextAt = failing ? Math.max(this.dueAt, now + this.retryMs) : Math.max(this.dueAt, sentAt + this.renewEveryMs);
    this.#schedule(nextAt);
  }

  /**
   * The lease key renewed longest ago (null without any): the one an outside sign of a loss is judged by.
   * @returns {LeaseKey | null}
   */
  #stalest() {
    /** @type {LeaseKey | null} */
    let stalest = null;
    for (const key of this.keys.values()) if (!stalest || key.renewedAt < stalest.renewedAt) stalest = key;
    return stalest;
  }

  /**
   * Marks the lease of `nodeId` lost, if it is the node held now, and says why as far as this
   * process can tell from the lease key `key`: renewals that failed (Redis unreachable) or were
   * sent late (a blocked event loop) or answered late, else a removal while renewals were on
   * time. `sign` is what showed the loss.
   * @param {string} nodeId
   * @param {string} sign
   * @param {LeaseKey} key
   */
  #lose(nodeId, sign, key) {
    if (this.state !== 'held' || nodeId !== this.nodeId) return;
    const now = performance.now();
    const silentMs = Math.round(now - key.renewedAt);
    // Without a renewal under way the timer is pending: if overdue, the loop has not run since.
    const lateMs = Math.round(this.renewal ? this.lateMs : Math.max(this.lateMs, now - this.dueAt));
    const expired = silentMs >= this.leaseMs * EXPIRED_AFTER_SHARE;
    const lease = `lease ${this.leaseMs} ms`;
    let why;
    if (expired && key.failingSince !== null) {
      why = `it expired while Redis did not answer (no successful renewal for ${silentMs} ms, ${lease}); ${sign}`;
    } else if (expired && lateMs >= this.renewEveryMs) {
      why = `it expired while the event loop was blocked for ${lateMs} ms (no renewal for ${silentMs} ms, ${lease}); ${sign}`;
    } else if (expired) {
      why = `it expired while Redis answered the renewals late (none answered for ${silentMs} ms, ${lease}); ${sign}`;
    } else {
      why = `${sign}, ${silentMs} ms after the last renewal (${lease}): Redis lost it (the database was flushed or restarted empty, or the key was deleted or evicted)`;
    }
    clearTimeout(this.timer);
    this.state = 'retaking';
    this.nodeId = newNodeId(this.prefix);
    this.onLost({ oldNodeId: nodeId, nodeId: this.nodeId, why, expired });
    this.#retake(nodeId);
  }

  /**
   * Releases the lost node (best effort), then takes a lease for the fresh one, retrying until Redis answers.
   * @param {string} oldNodeId
   */
  async #retake(oldNodeId) {
    try {
      await this.#releaseEverywhere(oldNodeId);
    } catch (err) {
      this.logger.warn(
        `presence: cannot release the lost node ${oldNodeId} (its lease ends by itself within ${this.leaseMs} ms): ${errorMessage(err)}`,
      );
    }
    const lostAt = performance.now();
    let failures = 0;
    while (this.state === 'retaking') {
      const nodeId = this.nodeId;
      const sentAt = performance.now();
      try {
        await this.#takeEverywhere(nodeId);
      } catch {
        failures += 1;
        await sleep(this.retryMs);
        continue;
      }
      if (this.state !== 'retaking' || nodeId !== this.nodeId) return;
      this.#held(sentAt);
      if (failures > 0) {
        this.logger.warn(
          `presence: node lease taken as node ${nodeId} after ${Math.round(performance.now() - lostAt)} ms and ${failures} failed attempt(s)`,
        );
      }
    }
  }
}

/**
 * A lease key of the node, by shard (see {@link NodeLease#keys}).
 * @typedef {import('./topology').LeaseShard & {renewedAt: number, failingSince: number | null, taken: boolean}} LeaseKey
 */

/**
 * What `onLost` learns: the lost node, the fresh one, why (for the log), and whether the lease expired.
 * @typedef {{oldNodeId: string, nodeId: string, why: string, expired: boolean}} LeaseLoss
 */

exports.NodeLease = NodeLease;
exports.newNodeId = newNodeId;
exports.nodeIdPrefix = nodeIdPrefix;
