#!/usr/bin/env bash
# The whole test suite: unit, integration, end-to-end and doc tests of every crate, then real
# Kafka clients against `sluice broker` (scripts/conformance.sh).
# Installs what the tests need on a fresh Debian machine: gcc and make, which build librdkafka
# from source for the Kafka-protocol client; kcat (librdkafka's CLI) for the broker's
# end-to-end tests; clang and libclang-dev, which build RocksDB for sluice-streams' state stores;
# python3-venv for the conformance harness's client venv; postgresql, whose server the
# PostgreSQL connector tests of sluice-connect run against (a throwaway cluster on 127.0.0.1,
# its URL in SLUICE_TEST_POSTGRES_URL; without it those tests say they are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
need=()
for pkg in gcc make kcat clang libclang-dev postgresql "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
source scripts/postgres.sh
start_postgres
trap stop_postgres EXIT
if cargo nextest --version >/dev/null 2>&1; then
  # A test process each, and a hung test stopped after 5 minutes (.config/nextest.toml).
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi
bash scripts/conformance.sh
