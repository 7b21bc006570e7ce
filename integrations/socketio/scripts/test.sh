#!/usr/bin/env bash
# Runs every test of the Socket.IO integration and of the live-room demo: installs their
# dependencies with `npm ci`, checks the package's TypeScript declarations and example
# (`npm run typecheck`) and its formatting (`npm run lint`), then runs both test suites in one
# `node --test` run (real redis-server with the presence module, demo servers and clients as
# processes, headless Chromium). Exits non-zero on any failure.
#
# The browser test needs Debian's Chromium at /usr/bin/chromium; the repository's scripts/test
# installs it (need_chromium in scripts/lib/prereqs.sh) before calling this script.
#
# Environment: REDIS_SERVER (default redis-server), PRESENCE_MODULE (default
# target/release/libredis_presence.so of the repository), PRESENCE_NPM_INSTALLED=1 to skip the
# `npm ci` of both packages (the repository's scripts/test installs them once, before it starts
# the lease soak that runs beside the tests).
set -euo pipefail

package_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo_dir="$(cd "$package_dir/../../examples/live-room" && pwd)"

if [ -z "${PRESENCE_NPM_INSTALLED:-}" ]; then
  (cd "$package_dir" && npm ci --no-audit --no-fund)
  (cd "$demo_dir" && npm ci --no-audit --no-fund)
fi

cd "$package_dir"
echo "== npm run typecheck" >&2
npm run --silent typecheck
echo "== npm run lint" >&2
npm run --silent lint
exec node --test --test-concurrency=1 test/*.test.js "$demo_dir"/test/*.test.js
