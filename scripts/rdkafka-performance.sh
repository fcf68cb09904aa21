#!/usr/bin/env bash
# librdkafka's own load tool, rdkafka_performance (C), built from the librdkafka source the
# rdkafka-sys crate vendors and linked with the librdkafka.a a release build of Sluice made:
# the client-neutral reference beside `sluice perf produce` (same librdkafka version, no Rust
# wrapper). Arguments go to rdkafka_performance, e.g.
#   bash scripts/rdkafka-performance.sh -P -t p -p 0 -b 127.0.0.1:9092 -s 100 -c 10000000 \
#     -a 1 -X linger.ms=5 -X batch.size=1000000 -q
# Needs gcc (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
cargo build --quiet --locked --release -p sluice
build="$CARGO_TARGET_DIR/release/build"
# rdkafka-sys configures and builds a copy of librdkafka's source tree here (with config.h).
lib="$(ls -t "$build"/rdkafka-sys-*/out/src/librdkafka.a | head -1)"
out="$(dirname "$(dirname "$lib")")"
libz="$(ls -t "$build"/libz-sys-*/out/lib/libz.a | head -1)"
zstd="$(ls -t "$build"/zstd-sys-*/out/libzstd.a | head -1)"
bin="$CARGO_TARGET_DIR/release/rdkafka_performance"
if [ ! -x "$bin" ] || [ "$lib" -nt "$bin" ]; then
  gcc -O2 -o "$bin" "$out/examples/rdkafka_performance.c" -I"$out/src" \
    "$lib" "$zstd" "$libz" -lpthread -lm -ldl
fi
exec "$bin" "$@"
