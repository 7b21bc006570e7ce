'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

/** The library as `FUNCTION LOAD` takes it (`lua/presence.lua`, shipped with the package). */
const LIBRARY = fs.readFileSync(path.join(__dirname, '..', '..', 'lua', 'presence.lua'), 'utf8');

/** The library's name, from its first line (`#!lua name=presence_v1`): its version. */
const NAME = /^#!lua name=(\S+)/.exec(LIBRARY)?.[1] ?? 'presence_v1';

/**
 * The EVAL form: the same file with its first line replaced by the flags EVAL takes (as
 * `lua/build.sh` writes it); at its end it then dispatches on ARGV[1].
 */
const EVAL_SOURCE = `#!lua flags=allow-cross-slot-keys\n${LIBRARY.slice(LIBRARY.indexOf('\n') + 1)}`;

/** The SHA1 `SCRIPT LOAD` answers for the EVAL form. */
const EVAL_SHA = crypto.createHash('sha1').update(EVAL_SOURCE).digest('hex');

/**
 * The message of an error reply (or of any error).
 * @param {unknown} err
 * @returns {string}
 */
function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The script library of the script engine (SPEC §13) on the servers of one deployment: loaded
 * with `FUNCTION LOAD REPLACE` and called with `FCALL`, or, where `FUNCTION` is refused (an ACL
 * without it, a server without Functions), loaded with `SCRIPT LOAD` and called with `EVALSHA`.
 * A server that lost it (`FUNCTION FLUSH`, `SCRIPT FLUSH`, a restart, a failover to a replica
 * that never had it) answers a call with `ERR Function not found` or `NOSCRIPT`: the caller
 * loads it there again ({@link ScriptLibrary#load}) and tries once more.
 */
class ScriptLibrary {
  /**
   * @param {(key: string, args: string[]) => Promise<unknown>} send sends a command to the
   *   server of a key
   */
  constructor(send) {
    this.send = send;
    /** @type {'function' | 'eval'} */
    this.mode = 'function';
    /** @type {Map<string, Promise<void>>} loads under way, by the key they were routed by */
    this.loading = new Map();
  }

  /** The library's name, with its version (`presence_v1`). */
  get name() {
    return NAME;
  }

  /**
   * Loads the library on the server of `key` (calls that met a lost library at once share one
   * load). The first `FUNCTION LOAD` refused for good switches every later call to `EVALSHA`.
   * @param {string} key
   * @returns {Promise<void>}
   */
  load(key) {
    let load = this.loading.get(key);
    if (!load) {
      load = this.#load(key).finally(() => this.loading.delete(key));
      this.loading.set(key, load);
    }
    return load;
  }

  /** @param {string} key */
  async #load(key) {
    if (this.mode === 'function') {
      try {
        await this.send(key, ['FUNCTION', 'LOAD', 'REPLACE', LIBRARY]);
        return;
      } catch (err) {
        if (!refusesFunctions(err)) throw err;
        this.mode = 'eval';
      }
    }
    const sha = String(await this.send(key, ['SCRIPT', 'LOAD', EVAL_SOURCE]));
    if (sha !== EVAL_SHA) throw new Error(`SCRIPT LOAD answered ${sha}, not the SHA1 of the library (${EVAL_SHA})`);
  }

  /**
   * The command that calls entry point `op` of the library with `keys` and `args`.
   * @param {string} op
   * @param {string[]} keys
   * @param {string[]} args
   * @returns {string[]}
   */
  command(op, keys, args) {
    if (this.mode === 'function') return ['FCALL', `${NAME}_${op}`, String(keys.length), ...keys, ...args];
    return ['EVALSHA', EVAL_SHA, String(keys.length), ...keys, op, ...args];
  }

  /**
   * Whether `err` says the server does not have the library.
   * @param {unknown} err
   */
  lost(err) {
    const message = messageOf(err);
    return message.startsWith('NOSCRIPT') || message.includes('Function not found');
  }
}

/**
 * Whether `err` refuses `FUNCTION LOAD` for good: an ACL without it (`NOPERM`), or a server
 * without Functions (an unknown command).
 * @param {unknown} err
 */
function refusesFunctions(err) {
  return /^NOPERM|unknown command|unknown subcommand/i.test(messageOf(err));
}

exports.ScriptLibrary = ScriptLibrary;
