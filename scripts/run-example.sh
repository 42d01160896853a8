#!/usr/bin/env bash
# Runs the bridge on the embedded in-memory store with config/sso-bridge.example.toml.
# A signing key is created under keys/ on first start; the client secret defaults to a
# development value unless LANGFUSE_CLIENT_SECRET is set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --runtime
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/sso-bridge-target}"
export LANGFUSE_CLIENT_SECRET="${LANGFUSE_CLIENT_SECRET:-dev-only-secret-change-me}"
exec cargo run --release --locked -- serve --config config/sso-bridge.example.toml
