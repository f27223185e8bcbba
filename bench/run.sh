#!/usr/bin/env bash
# Runs every zerodrop benchmark side by side with its baseline and prints one summary table.
#   bench/run.sh            full run (about 5 minutes on 2 cores)
#   bench/run.sh --smoke    seconds-long version that CI runs to keep this script working
#   bench/run.sh --write    also rewrite the table in docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=0; write=0
for a in "$@"; do
  case "$a" in --smoke) smoke=1 ;; --write) write=1 ;; *) echo "unknown argument $a" >&2; exit 2 ;; esac
done
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ $smoke = 1 ]; then dur=1; crit="--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10"; iters=30; conns="1 8"
else dur=10; crit="--warm-up-time 2 --measurement-time 5"; iters=2000; conns="1 8 64"; fi

cargo build --release --locked --bin zerodrop --examples >&2
bin="$CARGO_TARGET_DIR/release"
ex="$bin/examples"
"$ex/bench_bodies" "$work/bodies" >/dev/null

echo "== criterion: admission path per request" >&2
cargo bench --locked --bench admission -- $crit >&2

echo "== server load: zerodrop vs baseline (same TLS stack)" >&2
"$ex/baseline" 127.0.0.1:0 "$work/baseline-ca.pem" > "$work/baseline.out" &
pids+=($!); base_pid=$!
"$bin/zerodrop" serve --standalone --image-inspection=false --unknown-namespace-mode enforce --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --ca-bundle-out "$work/zerodrop-ca.pem" --log-level warn,zerodrop::commands=info --log-format json 2> "$work/zerodrop.log" &
pids+=($!); zd_pid=$!
for _ in $(seq 100); do
  grep -q "listening" "$work/baseline.out" 2>/dev/null && grep -q '"serving"' "$work/zerodrop.log" 2>/dev/null && break
  sleep 0.1
done
base_port=$(sed -nE 's/.*127.0.0.1:([0-9]+).*/\1/p' "$work/baseline.out" | head -1)
zd_port=$(grep '"serving"' "$work/zerodrop.log" | sed -nE 's/.*"tls":"127.0.0.1:([0-9]+)".*/\1/p' | head -1)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
echo "{\"idle_rss_kb\":{\"zerodrop\":$(rss $zd_pid VmRSS),\"baseline\":$(rss $base_pid VmRSS)}}" > "$work/results.jsonl"
for c in $conns; do
  for who in baseline zerodrop; do
    if [ $who = baseline ]; then pid=$base_pid; port=$base_port; ca="$work/baseline-ca.pem"; else pid=$zd_pid; port=$zd_port; ca="$work/zerodrop-ca.pem"; fi
    before=$(cpu $pid)
    out=$("$ex/loadgen" "https://localhost:$port/mutate" "$ca" "$work/bodies/typical.json" "$c" "$dur")
    after=$(cpu $pid)
    echo "{\"kind\":\"load\",\"who\":\"$who\",\"connections\":$c,\"cpu_ticks\":$((after - before)),\"peak_rss_kb\":$(rss $pid VmHWM),\"result\":$out}" >> "$work/results.jsonl"
  done
done
for who in baseline zerodrop; do
  if [ $who = baseline ]; then port=$base_port; ca="$work/baseline-ca.pem"; else port=$zd_port; ca="$work/zerodrop-ca.pem"; fi
  out=$("$ex/loadgen" "https://localhost:$port/mutate" "$ca" "$work/bodies/typical.json" 1 "$dur" fresh)
  echo "{\"kind\":\"fresh\",\"who\":\"$who\",\"result\":$out}" >> "$work/results.jsonl"
done

echo "== end to end: pod create latency through the real apiserver" >&2
harness=$(tests/harness/build.sh)
"$harness/controlplane" --bin "$harness" > "$work/cp.out" 2> "$work/cp.err" < <(sleep 100000) &
pids+=($!)
for _ in $(seq 300); do grep -q READY "$work/cp.out" && break; sleep 0.2; done
kubeconfig=$(sed -nE 's/^READY .*"kubeconfig":"([^"]+)".*/\1/p' "$work/cp.out")
"$bin/zerodrop" certs generate --out "$work/e2e-certs" --dns localhost --ip 127.0.0.1 >/dev/null
"$bin/zerodrop" serve --kubeconfig "$kubeconfig" --image-inspection=false --scan-interval 0 --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --tls-cert "$work/e2e-certs/tls.crt" --tls-key "$work/e2e-certs/tls.key" --log-level warn,zerodrop::commands=info --log-format json 2> "$work/zd-e2e.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '"serving"' "$work/zd-e2e.log" && break; sleep 0.1; done
e2e_port=$(grep '"serving"' "$work/zd-e2e.log" | sed -nE 's/.*"tls":"127.0.0.1:([0-9]+)".*/\1/p' | head -1)
out=$(PEER_POLICY=bench/peers/mutating-admission-policy.yaml "$ex/e2e_latency" "$kubeconfig" "https://127.0.0.1:$e2e_port" "$work/e2e-certs/ca.crt" "$iters" \
  "https://127.0.0.1:$base_port" "$work/baseline-ca.pem")
echo "{\"kind\":\"e2e\",\"result\":$out}" >> "$work/results.jsonl"

python3 bench/summary.py "$work/results.jsonl" "$CARGO_TARGET_DIR/criterion" > "$work/table.md"
cat "$work/table.md"
if [ $write = 1 ]; then python3 bench/summary.py --update-doc docs/benchmarks.md "$work/table.md"; fi
