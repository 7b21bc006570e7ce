'use strict';

const { attachPresence, presenceChannel } = require('./server');
const { createPresenceClient } = require('./client');
const { ErrorCode, PresenceError } = require('./errors');
const { isValidId, MAX_ID_BYTES } = require('./ids');

/** @type {typeof import('./index')} */
module.exports = {
  attachPresence,
  presenceChannel,
  createPresenceClient,
  ErrorCode,
  PresenceError,
  isValidId,
  MAX_ID_BYTES,
};
