#!/usr/bin/env bash
# Runs the browser tests against the switchboard binary (build it first:
# cargo build -p switchboard). Test files run one at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund
fi
mkdir -p test-output/screenshots
exec node --test --test-concurrency=1 tests/e2e/
