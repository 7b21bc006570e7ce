'use strict';

const test = require('node:test');
const { SITUATIONS } = require('./support/scenarios');

for (const situation of SITUATIONS) {
  test(`participants are right again, through the mechanism meant for it: ${situation.name}`, async (t) => {
    const result = await situation();
    // The time is printed, not judged: a loaded machine may take longer (measure.js compares).
    t.diagnostic(`${result.situation}: ${result.measuredMs} ms (bound ${result.boundMs} ms on a quiet machine, stale-after ${result.staleAfterS} s)`);
  });
}
