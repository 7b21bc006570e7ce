'use strict';

const { ErrorCode, PresenceError } = require('../errors');

/** @typedef {'auto' | 'module' | 'script'} EngineChoice */

/**
 * Whether the server has the module: `COMMAND INFO presence.join` answers the command's
 * description, or nil without it. Where `COMMAND` is refused, a `PRESENCE.COUNT` of a room no
 * one uses tells: an unknown command, or a count.
 * @param {(args: string[]) => Promise<unknown>} send one command to a server of the deployment
 * @returns {Promise<boolean>}
 */
async function hasModule(send) {
  try {
    const info = await send(['COMMAND', 'INFO', 'presence.join']);
    return Array.isArray(info) && info[0] !== null && info[0] !== undefined;
  } catch {
    try {
      await send(['PRESENCE.COUNT', 'engine-probe']);
      return true;
    } catch (err) {
      if (err instanceof Error && /unknown command/i.test(err.message)) return false;
      throw err;
    }
  }
}

/**
 * The engine to run (SPEC §13): `module` or `script` as asked, `auto` the module where the
 * server has it, else the script engine. Asking for the module on a server without it fails.
 * @param {EngineChoice} requested
 * @param {(args: string[]) => Promise<unknown>} send
 * @returns {Promise<{name: 'module' | 'script', reason: string}>}
 */
async function chooseEngine(requested, send) {
  if (requested === 'script') return { name: 'script', reason: 'asked for' };
  const loaded = await hasModule(send);
  if (requested === 'module') {
    if (!loaded) {
      throw new PresenceError(
        ErrorCode.UNAVAILABLE,
        "engine 'module': the Redis server has no PRESENCE.JOIN (load the presence module, or use engine 'script' or 'auto')",
      );
    }
    return { name: 'module', reason: 'asked for' };
  }
  return loaded
    ? { name: 'module', reason: 'the server has the presence module' }
    : { name: 'script', reason: 'the server has no presence module' };
}

exports.chooseEngine = chooseEngine;
