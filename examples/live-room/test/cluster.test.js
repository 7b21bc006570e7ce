'use strict';

const { describe, it, before, after } = require('node:test');
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
    it(`participants are right again, through the mechanism meant for it: ${situation.name}`, async (t) => {
      const result = await situation(onCluster(cluster));
      // The time is printed, not judged: a loaded machine may take longer (measure.js compares).
      t.diagnostic(
        `${result.situation}: ${result.measuredMs} ms (bound ${result.boundMs} ms on a quiet machine, stale-after ${result.staleAfterS} s)`,
      );
    });
  }
});
