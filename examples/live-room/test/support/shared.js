'use strict';

/*
 * The test support of the integration package, shared with the demo's tests: redis-server
 * with the presence module (alone or as a cluster), recording clients, polling and child-process helpers.
 */
const path = require('node:path');

const SUPPORT = path.join(__dirname, '..', '..', '..', '..', 'integrations', 'socketio', 'test', 'support');

module.exports = {
  ...require(path.join(SUPPORT, 'redis-server')),
  ...require(path.join(SUPPORT, 'redis-cluster')),
  ...require(path.join(SUPPORT, 'test-client')),
  ...require(path.join(SUPPORT, 'wait')),
  ...require(path.join(SUPPORT, 'processes')),
  ...require(path.join(SUPPORT, 'engine')),
  keySlot: require(path.join(SUPPORT, '..', '..', 'src', 'slots')).keySlot,
};
