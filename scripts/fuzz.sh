#!/usr/bin/env bash
# Fuzzing: builds every target in fuzz/ and runs each for SECONDS (default 20) on a copy of its
# committed seed corpus (fuzz/corpus/<target>/), failing if any target crashes (a panic, an
# overflow, an allocation past libFuzzer's limit, or a broken round-trip property). A crashing
# input is saved under fuzz/artifacts/<target>/; replay it with the command the run prints.
#   bash scripts/fuzz.sh [SECONDS]
# Stable Rust only: cargo-fuzz's nightly flags are let through by RUSTC_BOOTSTRAP=1, and
# `--sanitizer none` leaves out AddressSanitizer, whose runtime stable does not ship (the crates
# deny `unsafe`). Installs cargo-fuzz (crates.io) if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-20}"
case "$seconds" in '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
export CARGO_TARGET_DIR="${SLUICE_FUZZ_TARGET_DIR:-$HOME/.cache/sluice-target-fuzz}"
export RUSTC_BOOTSTRAP=1
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
# cargo fuzz has no --locked: check that the committed fuzz/Cargo.lock needs no change first.
cargo metadata --locked --format-version 1 >/dev/null
targets=(decode_request decode_batch consumer_protocol consumer_offsets transaction_state)
listed="$(cargo fuzz list | sort | tr '\n' ' ')"
expected="$(printf '%s\n' "${targets[@]}" | sort | tr '\n' ' ')"
if [ "$listed" != "$expected" ]; then
  echo "fuzz: fuzz/Cargo.toml has targets '$listed', this script runs '$expected'" >&2
  exit 1
fi
echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build --sanitizer none --debug-assertions
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds} s"
  mkdir -p "$work/$t"
  # New inputs go to the first (scratch) directory; the committed seeds are only read.
  if ! cargo fuzz run --sanitizer none --debug-assertions "$t" "$work/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$work/$t.log" 2>&1; then
    tail -n 40 "$work/$t.log"
    failed+=("$t")
  else
    grep -E '^(Done|stat::number_of_executed_units)' "$work/$t.log" || true
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "== fuzz: ${#targets[@]} targets ran ${seconds} s each without a crash"
