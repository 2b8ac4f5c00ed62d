#!/usr/bin/env bash
# The test command (README, `.ci/run`): set up what the tests need, then run
# every test. PostgreSQL is started first (scripts/postgres.sh), for the
# PostgreSQL store's tests. The JavaScript and Python policy SDKs come from
# pinned npm and PyPI packages (their unit tests run, and the example and hostile components are
# built into target/policies/); those components are then compiled once, by the
# release binary, into the cache the tests share (a 12-18 MB interpreter
# compiles in about a minute), and the whole Rust workspace is tested; last,
# schemathesis (pinned, from PyPI) runs against `recharge serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL for the PostgreSQL store's tests: started here (as root, the
# machine's cluster; otherwise a private one under target/pg).
RECHARGE_TEST_POSTGRES=$(bash scripts/postgres.sh)
export RECHARGE_TEST_POSTGRES
bash sdk/build-policies.sh
cargo build --release --bin recharge
for component in target/policies/*.wasm; do
  # Only to fill the cache: the tests themselves judge every component.
  RECHARGE_CACHE_DIR=target/test-cache target/release/recharge check "$component" >/dev/null || true
done
cargo test --workspace
# The HTTP API against its own OpenAPI document: no 5xx, no response that
# breaks the schema (a short run; see README for a longer one).
bash scripts/schemathesis.sh 30
