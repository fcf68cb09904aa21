#!/usr/bin/env bash
# The broker benchmarks of docs/benchmarks.md (issue 5), each three times, against one release
# broker on 127.0.0.1:$PORT over a fresh data directory: end-to-end latency at 50k records/s,
# produce (default settings and big batches with Sluice's own producer; big batches with
# librdkafka's producer through Sluice's client and with librdkafka's C tool, as references),
# acks=all with 1 KiB records, consume (Sluice's own consumer; librdkafka's and kcat as
# references), 1,000 idle connections. Prints one line per run with the broker's CPU time
# beside it. Takes about 12 minutes; run nothing else meanwhile.
#   bash scripts/bench-broker.sh [PORT]
# Broker settings go in BROKER_OVERRIDES, e.g. Kafka's page-cache behaviour instead of `auto`:
#   BROKER_OVERRIDES="log.page.cache.window.bytes=-1" bash scripts/bench-broker.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
port="${1:-9092}"
cargo build --quiet --locked --release -p sluice
S="$CARGO_TARGET_DIR/release/sluice"
B="127.0.0.1:$port"
data="$(mktemp -d)"
overrides=()
for o in ${BROKER_OVERRIDES:-}; do overrides+=(--override "$o"); done
"$S" broker --log-dirs "$data" --listeners "PLAINTEXT://$B" "${overrides[@]}" >"$data.log" 2>&1 &
pid=$!
cleanup() { kill -9 "$pid" 2>/dev/null || true; rm -rf "$data" "$data.log" "$data.out"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz="$(getconf CLK_TCK)"
run() {
  local name="$1"; shift
  local b0 t0 t1 b1
  b0="$(ticks)"; t0="$(date +%s.%N)"
  "$@" >"$data.out" 2>&1 || echo "(exit $?)" >>"$data.out"
  t1="$(date +%s.%N)"; b1="$(ticks)"
  printf '%-18s %s | wall %s s, broker CPU %d ms\n' "$name" "$(tail -1 "$data.out" | cut -c1-190)" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" "$(( (b1 - b0) * 1000 / hz ))"
}
# Latency first: later, the kernel writes back gigabytes of the throughput runs meanwhile.
for i in 1 2 3; do
  run "end-to-end-$i" "$S" perf end-to-end --bootstrap "$B" --topic "e$i" --num-records 500000 \
    --throughput 50000 --producer-props linger.ms=0
done
for i in 1 2 3; do
  run "produce-default-$i" "$S" perf produce --bootstrap "$B" --topic p1 --num-records 10000000 \
    --record-size 100 --acks 1
done
for i in 1 2 3; do
  run "produce-batch-$i" "$S" perf produce --bootstrap "$B" --topic p2 --num-records 10000000 \
    --record-size 100 --acks 1 --producer-props linger.ms=5 batch.size=1000000
done
for i in 1 2 3; do
  run "rd-produce-batch-$i" "$S" perf produce --bootstrap "$B" --topic p3 --num-records 10000000 \
    --record-size 100 --acks 1 --producer-props linger.ms=5 batch.size=1000000 \
    sluice.producer.engine=librdkafka
done
for i in 1 2 3; do
  run "c-produce-batch-$i" bash scripts/rdkafka-performance.sh -P -t p4 -p 0 -b "$B" -s 100 \
    -c 10000000 -a 1 -X linger.ms=5 -X batch.size=1000000 \
    -X queue.buffering.max.messages=1000000 -X queue.buffering.max.kbytes=32768 -q
done
for i in 1 2 3; do
  run "acks-all-$i" "$S" perf produce --bootstrap "$B" --topic "a$i" --num-records 1000000 \
    --record-size 1024 --acks all
done
for i in 1 2 3; do
  run "consume-$i" "$S" perf consume --bootstrap "$B" --topic p1 --messages 10000000
done
for i in 1 2 3; do
  run "rd-consume-$i" "$S" perf consume --bootstrap "$B" --topic p1 --messages 10000000 \
    --consumer-props sluice.consumer.engine=librdkafka
done
if command -v kcat >/dev/null; then
  for i in 1 2 3; do
    run "kcat-consume-$i" bash -c "TIMEFORMAT='%R s for 10M records'; time kcat -b $B -C -t p1 -o beginning -c 10000000 -q -f ''"
  done
fi
run "idle-1000" python3 scripts/idle-connections.py --bootstrap "$B" --pid "$pid" --count 1000
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
echo "broker exited $status after SIGTERM"
