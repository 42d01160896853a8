#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (the integration tests
# start their own redis-server, SimpleSAMLphp and openid-client processes on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sso-bridge-target}"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked "$@"
