#!/usr/bin/env bash
# Runs every zerodrop benchmark side by side with its baseline and prints one summary table.
#   experiments/benchmarks/run.sh            full run (about 15 minutes on 2 cores, plus Kyverno's first build)
#   experiments/benchmarks/run.sh --smoke    seconds-long version that CI runs to keep this script working
#   experiments/benchmarks/run.sh --write    also rewrite the tables in docs/benchmarks.md and docs/peers.md
#   experiments/benchmarks/run.sh --peers    only the apiserver parts: pod create latency and the peers
set -euo pipefail
cd "$(dirname "$0")/../.."
smoke=0; write=0; only_peers=0
for a in "$@"; do
  case "$a" in --smoke) smoke=1 ;; --write) write=1 ;; --peers) only_peers=1 ;; *) echo "unknown argument $a" >&2; exit 2 ;; esac
done
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ $smoke = 1 ]; then dur=1; crit="--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10"; iters=30; conns="1 8"
else dur=10; crit="--warm-up-time 2 --measurement-time 5"; iters=2000; conns="1 8 64"; fi

# The test command's one release build (zerodrop and the test programs), shared with the node.
bin="$(tools/release.sh)"
ex="$bin"
"$ex/bench_bodies" "$work/bodies" >/dev/null

if [ $only_peers = 0 ]; then
  echo "== criterion: admission path per request" >&2
  tools/release.sh bench --bench admission -- $crit >&2
  echo "== criterion: the traffic path index at scale (10,000 Services), and admission with it" >&2
  tools/release.sh bench --bench paths -- $crit >&2
fi

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
[ $only_peers = 1 ] && conns=""
for c in $conns; do
  for who in baseline zerodrop; do
    if [ $who = baseline ]; then pid=$base_pid; port=$base_port; ca="$work/baseline-ca.pem"; else pid=$zd_pid; port=$zd_port; ca="$work/zerodrop-ca.pem"; fi
    before=$(cpu $pid)
    out=$("$ex/loadgen" "https://localhost:$port/mutate" "$ca" "$work/bodies/typical.json" "$c" "$dur")
    after=$(cpu $pid)
    echo "{\"kind\":\"load\",\"who\":\"$who\",\"connections\":$c,\"cpu_ticks\":$((after - before)),\"peak_rss_kb\":$(rss $pid VmHWM),\"result\":$out}" >> "$work/results.jsonl"
  done
done
for who in $([ $only_peers = 0 ] && echo baseline zerodrop); do
  if [ $who = baseline ]; then port=$base_port; ca="$work/baseline-ca.pem"; else port=$zd_port; ca="$work/zerodrop-ca.pem"; fi
  out=$("$ex/loadgen" "https://localhost:$port/mutate" "$ca" "$work/bodies/typical.json" 1 "$dur" fresh)
  echo "{\"kind\":\"fresh\",\"who\":\"$who\",\"result\":$out}" >> "$work/results.jsonl"
done

echo "== end to end: pod create latency through the real apiserver" >&2
harness=$(tools/harness/build.sh)
# Pod creates (and Deployments) are audited, for the peers' burst: each request's latency.
cat > "$work/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    verbs: [create]
    resources: [{ group: "", resources: [pods] }, { group: apps, resources: [deployments] }]
  - level: None
YAML
"$harness/controlplane" --bin "$harness" --apiserver-arg="--audit-policy-file=$work/audit-policy.yaml" \
  --apiserver-arg="--audit-log-path=$work/audit.log" --apiserver-arg=--audit-log-mode=batch \
  --apiserver-arg=--audit-log-batch-max-wait=1s > "$work/cp.out" 2> "$work/cp.err" < <(sleep 100000) &
pids+=($!); cp_pid=$!
for _ in $(seq 300); do grep -q READY "$work/cp.out" && break; sleep 0.2; done
kubeconfig=$(sed -nE 's/^READY .*"kubeconfig":"([^"]+)".*/\1/p' "$work/cp.out")
apiserver_pid=$(sed -nE 's/^READY .*"apiserverPid":([0-9]+).*/\1/p' "$work/cp.out")
"$bin/zerodrop" certs generate --out "$work/e2e-certs" --dns localhost --ip 127.0.0.1 >/dev/null
"$bin/zerodrop" serve --kubeconfig "$kubeconfig" --image-inspection=false --scan-interval 0 --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --tls-cert "$work/e2e-certs/tls.crt" --tls-key "$work/e2e-certs/tls.key" --log-level warn,zerodrop::commands=info --log-format json 2> "$work/zd-e2e.log" &
pids+=($!); zd_e2e_pid=$!
for _ in $(seq 100); do grep -q '"serving"' "$work/zd-e2e.log" && break; sleep 0.1; done
e2e_port=$(grep '"serving"' "$work/zd-e2e.log" | sed -nE 's/.*"tls":"127.0.0.1:([0-9]+)".*/\1/p' | head -1)
out=$("$ex/e2e_latency" "$kubeconfig" "https://127.0.0.1:$e2e_port" "$work/e2e-certs/ca.crt" "$iters" \
  "https://127.0.0.1:$base_port" "$work/baseline-ca.pem")
echo "{\"kind\":\"e2e\",\"result\":$out}" >> "$work/results.jsonl"

echo "== peers: zerodrop (without and with the traffic path index over 10,000 Services), Kyverno and the in-tree MutatingAdmissionPolicy, one apiserver, one run" >&2
# CI's smoke runs the in-tree policy only: Kyverno is a several-minute build (cached by content).
# The smoke's path index arm: 200 Services (creating 10,000 takes the apiserver 90 s here).
if [ $smoke = 1 ]; then peer_args="30 20 10"; export ZERODROP_PATH_SERVICES=200; else peer_args="2000 1000 300"; export ZERODROP_KYVERNO="$(tools/kyverno/build.sh)"; fi
out=$(APISERVER_PID=$apiserver_pid AUDIT_LOG="$work/audit.log" PEER_POLICY=experiments/peers/mutating-admission-policy.yaml \
  ZERODROP_URL="https://127.0.0.1:$e2e_port" ZERODROP_CA="$work/e2e-certs/ca.crt" ZERODROP_PID=$zd_e2e_pid \
  NULL_URL="https://127.0.0.1:$base_port" NULL_CA="$work/baseline-ca.pem" NULL_PID=$base_pid \
  ZERODROP_BIN="$bin/zerodrop" ZERODROP_GATEWAY_CRDS="$(tools/gateway-api/crds.sh)" \
  "$ex/peers_bench" "$kubeconfig" $peer_args)
echo "{\"kind\":\"peers\",\"result\":$out}" >> "$work/results.jsonl"
if [ $smoke = 0 ]; then
  # Behaviour on one corpus, Kyverno included (tests/e2e/peers), on the test's own control plane.
  kill "$cp_pid"; wait "$cp_pid" 2>/dev/null || true
  ZERODROP_PEERS_TABLE="$work/peers-behaviour.md" cargo test --locked -p zerodrop --test e2e peers::the_peers_on_one_corpus -- --exact >&2
fi

python3 experiments/benchmarks/summary.py "$work/results.jsonl" "$CARGO_TARGET_DIR/criterion" > "$work/table.md"
python3 experiments/benchmarks/summary.py --peers "$work/results.jsonl" > "$work/peers.md"
[ $only_peers = 1 ] || cat "$work/table.md"
echo; cat "$work/peers.md"
if [ -f "$work/peers-behaviour.md" ]; then echo; cat "$work/peers-behaviour.md"; fi
if [ $write = 1 ]; then
  [ $only_peers = 1 ] || python3 experiments/benchmarks/summary.py --update-doc docs/benchmarks.md "$work/table.md"
  python3 experiments/benchmarks/summary.py --update-section docs/benchmarks.md peers-speed "$work/peers.md"
  if [ -f "$work/peers-behaviour.md" ]; then python3 experiments/benchmarks/summary.py --update-section docs/peers.md peers-behaviour "$work/peers-behaviour.md"; fi
fi
