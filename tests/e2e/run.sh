#!/usr/bin/env bash
# Runs the browser tests against the switchboard binary (build it first:
# cargo build -p switchboard). Test files run one at a time.
#
#   tests/e2e/run.sh               one node on SQLite
#   tests/e2e/run.sh --nodes 2     two nodes on PostgreSQL and NATS behind a
#                                  round-robin balancer; needs E2E_POSTGRES
#                                  (a URL whose user may create databases)
#                                  and nats-server (E2E_NATS_SERVER, default
#                                  /usr/sbin/nats-server)
set -euo pipefail
cd "$(dirname "$0")/../.."

while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) export E2E_NODES="${2:?--nodes needs a number}"; shift 2 ;;
    --nodes=*) export E2E_NODES="${1#--nodes=}"; shift ;;
    *) echo "usage: $0 [--nodes N]" >&2; exit 2 ;;
  esac
done
if [ "${E2E_NODES:-1}" != 1 ] && [ -z "${E2E_POSTGRES:-}" ]; then
  echo "E2E_NODES=${E2E_NODES} needs E2E_POSTGRES, e.g. postgres://switchboard@127.0.0.1:5432/postgres" >&2
  exit 2
fi

if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  npm ci --prefix tests/e2e --no-audit --no-fund
fi
mkdir -p test-output/screenshots
exec node --test --test-concurrency=1 tests/e2e/
