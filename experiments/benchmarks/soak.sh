#!/usr/bin/env bash
# Soak: zerodrop serve under the benchmark's peak load (8 keep-alive TLS connections) for
# MINUTES (default 3), sampling RSS every 10 s. Fails on any error or if RSS keeps growing.
#   experiments/benchmarks/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes="${1:-3}"
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
work=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
bin="$(tools/release.sh)"
"$bin/bench_bodies" "$work/bodies" >/dev/null
"$bin/zerodrop" serve --standalone --image-inspection=false --unknown-namespace-mode enforce --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --ca-bundle-out "$work/ca.pem" --log-level warn,zerodrop::commands=info --log-format json 2> "$work/zd.log" &
pids+=($!); zd=$!
for _ in $(seq 100); do grep -q '"serving"' "$work/zd.log" && break; sleep 0.1; done
port=$(grep '"serving"' "$work/zd.log" | sed -nE 's/.*"tls":"127.0.0.1:([0-9]+)".*/\1/p' | head -1)
seconds=$((minutes * 60))
"$bin/loadgen" "https://localhost:$port/mutate" "$work/ca.pem" "$work/bodies/typical.json" 8 "$seconds" > "$work/load.json" &
load=$!
echo "t_s rss_kib"
samples=()
for t in $(seq 0 10 "$seconds"); do
  rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$zd/status")
  samples+=("$rss"); echo "$t $rss"
  [ "$t" -lt "$seconds" ] && sleep 10
done
wait "$load"
cat "$work/load.json"
python3 - "$work/load.json" "${samples[@]}" <<'PY'
import json, sys
load = json.load(open(sys.argv[1])); rss = [int(x) for x in sys.argv[2:]]
warm = rss[len(rss) // 4:]  # after warm-up
growth = (max(warm) - min(warm)) / 1024
print(f"requests {load['requests']}, errors {load['errors']}, RSS {min(warm)/1024:.1f}..{max(warm)/1024:.1f} MiB after warm-up (spread {growth:.1f} MiB)")
sys.exit(1 if load["errors"] or growth > 8 else 0)
PY
