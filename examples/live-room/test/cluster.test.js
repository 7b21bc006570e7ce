'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startRedisCluster } = require('./support/shared');
const { SITUATIONS, TIMINGS, onCluster } = require('./support/scenarios');

/**
 * The five situations of situations.test.js with the demo on a Redis Cluster (REDIS_CLUSTER):
 * 3 masters and 3 replicas with the module, shared by the situations.
 */
describe('the demo on a Redis Cluster', () => {
  let cluster;

  before(async () => {
    cluster = await startRedisCluster({ sweepIntervalMs: TIMINGS.sweepIntervalMs });
  });

  after(async () => {
    if (cluster) await cluster.stop();
  });

  for (const situation of SITUATIONS) {
    it(`participants are right again in time: ${situation.name}`, async (t) => {
      const result = await situation(onCluster(cluster));
      t.diagnostic(`${result.situation}: ${result.measuredMs} ms (bound ${result.boundMs} ms, stale-after ${result.staleAfterS} s)`);
      assert.ok(
        result.measuredMs <= result.boundMs,
        `${result.situation}: right again after ${result.measuredMs} ms, bound ${result.boundMs} ms`,
      );
    });
  }
});
