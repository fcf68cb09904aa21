#!/usr/bin/env bash
# Real Kafka clients (kafka-python, librdkafka via confluent-kafka) against `sluice broker`:
# the shared conformance harness, all cases. Starts a broker on a free loopback port over a
# fresh data directory, runs the harness, stops the broker with SIGTERM (it must exit 0).
#   bash scripts/conformance.sh [harness args, e.g. --only fetch,transactions]
# The harness is found at $SLUICE_KAFKA_CONFORMANCE (an error if it is not there), else at
# ../shared/conformance/kafka beside the checkout (as CI has it); its client venv is created on
# first use (PyPI). Without either, the script says it skipped the harness and exits 0, so a
# clone of this repository alone passes `bash scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
harness="${SLUICE_KAFKA_CONFORMANCE:-}"
if [ -n "$harness" ]; then
  # Asked for by name: a missing harness is an error, not a skip.
  if [ ! -x "$harness/run.sh" ]; then
    echo "conformance: SLUICE_KAFKA_CONFORMANCE=$harness has no executable run.sh" >&2
    exit 1
  fi
elif [ -x ../shared/conformance/kafka/run.sh ]; then
  harness=../shared/conformance/kafka
else
  echo "conformance: skipped: the Kafka conformance harness is not beside this checkout" \
    "(../shared/conformance/kafka); set SLUICE_KAFKA_CONFORMANCE to run it"
  exit 0
fi
harness="$(cd "$harness" && pwd)"
cargo build --quiet --locked -p sluice
bin="$CARGO_TARGET_DIR/debug/sluice"
data="$(mktemp -d)"
log="$data.broker.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=info "$bin" broker --listeners "PLAINTEXT://127.0.0.1:$port" --log-dirs "$data" \
  --override group.initial.rebalance.delay.ms=0 >"$log" 2>&1 &
pid=$!
cleanup() { kill -9 "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
status=0
"$harness/run.sh" --bootstrap "127.0.0.1:$port" "$@" || status=$?
kill -TERM "$pid"
for _ in $(seq 1 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "conformance: the broker did not stop within 40 s of SIGTERM" >&2; status=1
else
  wait "$pid" || { echo "conformance: the broker exited non-zero after SIGTERM" >&2; status=1; }
fi
if [ "$status" -ne 0 ]; then
  echo "== broker log (last 50 lines)"; tail -n 50 "$log"
fi
rm -f "$log"
exit "$status"
