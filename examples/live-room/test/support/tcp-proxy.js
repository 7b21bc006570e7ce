'use strict';

const net = require('node:net');

/**
 * A TCP proxy on 127.0.0.1 whose `cut()` simulates a network that silently drops: from then
 * on nothing is forwarded in either direction and no connection is closed or refused, as
 * when a phone loses its signal.
 */
class TcpProxy {
  /** @param {number} targetPort the port on 127.0.0.1 to forward to */
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.isCut = false;
    this.sockets = new Set();
    this.server = net.createServer((client) => this.#accept(client));
  }

  /** Starts listening; resolves with the proxy's port. */
  start() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => resolve(this.server.address().port));
    });
  }

  /** Stops forwarding, silently. */
  cut() {
    this.isCut = true;
  }

  /** Closes every connection and the listener. */
  close() {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #keep(socket) {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  #accept(client) {
    this.#keep(client);
    if (this.isCut) return;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    this.#keep(upstream);
    this.#forward(client, upstream);
    this.#forward(upstream, client);
  }

  #forward(from, to) {
    from.on('data', (chunk) => {
      if (!this.isCut) to.write(chunk);
    });
    from.on('end', () => {
      if (!this.isCut) to.end();
    });
    from.on('close', () => {
      if (!this.isCut) to.destroy();
    });
  }
}

module.exports = { TcpProxy };
