'use strict';

const { PresenceServer } = require('./presence-server');
const { presenceChannel } = require('./presence-channel');
const { readOptions } = require('./options');

/**
 * Tells whether a namespace's adapter is Socket.IO's `SessionAwareAdapter` (or extends it): the
 * adapter a server with connection state recovery gets unless the application gives its own.
 * Socket.IO has no public way to read a server's options; adapters of other packages that
 * restore sessions are caught per socket instead (see `socket.recovered` in the connection
 * handler). The class is recognised by name, since the application's copy of socket.io-adapter
 * may not be the one this package would load.
 * @param {object} adapter
 * @returns {boolean}
 */
function restoresSessions(adapter) {
  for (let proto = Object.getPrototypeOf(adapter); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor && proto.constructor.name === 'SessionAwareAdapter') return true;
  }
  return false;
}

/**
 * Attaches room presence to a Socket.IO server (see `server.d.ts` for the options and what
 * it resolves): checks the options, refuses a server with connection state recovery, and
 * resolves once the pub/sub subscription is confirmed, the node's lease taken and the
 * handlers in place.
 * @template {import('socket.io').Server<any, any, any, any>} TServer
 * @param {TServer} io
 * @param {Partial<import('./server').AttachPresenceOptions<import('./server').ServerSocket<TServer>>>} [options]
 * @returns {Promise<import('./server').PresenceHandle>}
 */
async function attachPresence(io, options = {}) {
  const settings = readOptions(options);
  const nsp = io.of(settings.namespace);
  if (restoresSessions(nsp.adapter)) {
    throw new TypeError(
      'attachPresence: connection state recovery must stay off (a recovered socket keeps an id whose presence was already removed)',
    );
  }
  const server = new PresenceServer(nsp, settings);
  await server.start();
  return {
    close: () => server.close(),
    get nodeId() {
      return server.lease.nodeId;
    },
    get engine() {
      return server.engine;
    },
    readRoom: (roomId) => server.readRoom(roomId),
    reconcile: (roomId) => server.reconcile(roomId),
  };
}

/** @type {typeof import('./server')} */
module.exports = { attachPresence, presenceChannel };
