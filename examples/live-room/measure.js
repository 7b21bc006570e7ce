'use strict';

/*
 * Runs the five situations of the requirement against real processes and prints a Markdown
 * table of the measured times until the participant list and the viewer count are right again.
 * Needs redis-server and the presence module, like the tests (REDIS_SERVER, PRESENCE_MODULE).
 */
const { SITUATIONS, TIMINGS } = require('./test/support/scenarios');

async function main() {
  const rows = [];
  for (const situation of SITUATIONS) {
    const result = await situation();
    rows.push(`| ${result.situation} | ${result.staleAfterS} s | ${result.specBound} | ${result.boundMs} ms | **${result.measuredMs} ms** | ${result.what} |`);
  }
  console.log(
    `Timings: Socket.IO pingInterval ${TIMINGS.pingIntervalMs} ms and pingTimeout ${TIMINGS.pingTimeoutMs} ms, ` +
      `client heartbeat every ${TIMINGS.heartbeatIntervalMs}-${TIMINGS.heartbeatIntervalMs + TIMINGS.heartbeatJitterMs} ms, ` +
      `room:participants coalesced per ${TIMINGS.participantsIntervalMs} ms, presence.sweep-interval ${TIMINGS.sweepIntervalMs} ms. ` +
      'Each bound is the guaranteed bound for these timings plus 1.5 s for process scheduling.\n',
  );
  console.log('| situation | presence.stale-after | guaranteed | bound here | measured | from → to |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err.stack);
    process.exit(1);
  },
);
