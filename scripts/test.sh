#!/usr/bin/env bash
# The whole test suite: unit, integration, end-to-end and doc tests of every crate.
# Installs what the tests need on a fresh Debian machine: beyond the Rust toolchain, gcc and
# make, which build librdkafka from source for the Kafka-protocol client (the streams, connect
# and broker crates add their packages here).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
need=()
for pkg in gcc make "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
cargo test --workspace --locked --no-fail-fast
