#!/usr/bin/env bash
# The test command (README, `.ci/run`): set up what the tests need, then run
# every test. Today that is the JavaScript and Python policy SDKs (pinned npm
# and PyPI packages, their unit tests, the example components), then the whole
# Rust workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash sdk/build-policies.sh
cargo test --workspace
