'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { SITUATIONS } = require('./support/scenarios');

for (const situation of SITUATIONS) {
  test(`participants are right again in time: ${situation.name}`, async (t) => {
    const result = await situation();
    t.diagnostic(`${result.situation}: ${result.measuredMs} ms (bound ${result.boundMs} ms, stale-after ${result.staleAfterS} s)`);
    assert.ok(
      result.measuredMs <= result.boundMs,
      `${result.situation}: right again after ${result.measuredMs} ms, bound ${result.boundMs} ms`,
    );
  });
}
