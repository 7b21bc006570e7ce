#!/usr/bin/env bash
# Runs every test of the Socket.IO integration and of the live-room demo: installs their
# dependencies with `npm ci`, checks the package's TypeScript declarations and example
# (`npm run typecheck`) and its formatting (`npm run lint`), then runs both test suites in one
# `node --test` run (real redis-server with the presence module, demo servers and clients as
# processes, headless Chromium). Exits non-zero on any failure.
#
# Environment: REDIS_SERVER (default redis-server), PRESENCE_MODULE (default
# target/release/libredis_presence.so of the repository).
set -euo pipefail

package_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo_dir="$(cd "$package_dir/../../examples/live-room" && pwd)"

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "test.sh: installing chromium for the browser test" >&2
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2; then
    echo "test.sh: chromium could not be installed; the browser test will fail" >&2
  fi
fi

(cd "$package_dir" && npm ci --no-audit --no-fund)
(cd "$demo_dir" && npm ci --no-audit --no-fund)

cd "$package_dir"
echo "== npm run typecheck" >&2
npm run --silent typecheck
echo "== npm run lint" >&2
npm run --silent lint
exec node --test --test-concurrency=1 test/*.test.js "$demo_dir"/test/*.test.js
