'use strict';

/** How long a graceful close of a pub/sub connection may take before it is cut. */
const CLOSE_TIMEOUT_MS = 1000;

/**
 * Closes a pub/sub client gracefully when it is connected, else at once (Redis unreachable).
 * @param {import('redis').RedisClientType<any, any, any, any, any> | null} client
 * @returns {Promise<void>}
 */
async function closeClient(client) {
  if (!client || !client.isOpen) return;
  if (!client.isReady) {
    client.destroy();
    return;
  }
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
  });
  await Promise.race([client.close().catch(() => {}), deadline]);
  clearTimeout(timer);
  if (client.isOpen) client.destroy();
}

exports.closeClient = closeClient;
