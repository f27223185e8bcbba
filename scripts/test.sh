#!/usr/bin/env bash
# The whole test suite on a fresh machine of this kind: builds (and, for the node, installs)
# what it needs, then runs every stage; README "Test" and .ci/run call exactly this.
#
#   scripts/test.sh                      every stage below, in order, then a table of their times
#   scripts/test.sh --stage NAME [...]   only these (each builds what it needs)
#   scripts/test.sh --list               the stages
#
# Stages (docs/development.md):
#   fast          fmt, clippy, plain `cargo test`: the core, the in-process suite, the testkit
#   tools         Helm, promtool, the registry tools from their Go modules; the `tools` tests
#   e2e           the control plane of Kubernetes 1.37 from its Go modules; the `e2e` suite
#   versions      1.30 (the whole e2e suite), 1.33 and 1.36 (the acceptance core)
#   node          the experiments' own tests; a real node + 2 client nodes (nftables); the multi-node,
#                 traffic, verify and self-upgrade smokes
#   bench         the benchmark scripts' smoke run (keeps them working; numbers not judged)
#   versions-all  1.32 and 1.34 as well (not in the default run: no capability boundary)
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(fast tools e2e versions node bench)
EXTRA=(versions-all)

# Build outputs live outside the checkout so CI's fresh clones reuse them.
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
mkdir -p "$CARGO_TARGET_DIR"
# Artifacts of the workspace's own crates bake in their checkout's path (env!("CARGO_MANIFEST_DIR"))
# and cargo reuses them across checkouts when the sources look older; clean them when this
# checkout is not the one that built them (the dependencies stay cached).
if [ "$(cat "$CARGO_TARGET_DIR/.checkout" 2>/dev/null)" != "$PWD" ]; then
  for p in zerodrop zerodrop-core zerodrop-testkit; do
    cargo clean -p "$p" >/dev/null 2>&1 || true
    cargo clean -p "$p" --release --target x86_64-unknown-linux-gnu >/dev/null 2>&1 || true
  done
  echo "$PWD" >"$CARGO_TARGET_DIR/.checkout"
fi

# Each step of a stage prints its time when the next one starts (or the stage ends).
step_done() { if [ -n "${step_at:-}" ]; then printf '    (step: %s s)\n' "$((SECONDS - step_at))"; fi; }
step() {
  step_done
  step_at=$SECONDS
  printf '\n==> %s\n' "$*"
}
need_go() { command -v go >/dev/null || { echo "go is required for stage $1 (it builds its tools from their Go modules)"; exit 1; }; }

# The control plane and the tools, exported for the tests (each script caches by content).
harness() { ZERODROP_HARNESS_BIN="$(tools/harness/build.sh "$@")"; export ZERODROP_HARNESS_BIN; }

stage_fast() {
  command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy (every target, the tools and e2e tests too)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  cargo clippy --locked -p zerodrop --test tools --test e2e -- -D warnings
  step "cargo test: the core, the in-process suite, the testkit (nothing but Rust)"
  cargo test --locked
}

stage_tools() {
  need_go tools
  step "Helm, promtool, the registry tools (from their Go modules, cached by content)"
  ZERODROP_HELM="$(tools/helm/build.sh)"
  ZERODROP_PROMTOOL="$(tools/promtool/build.sh)"
  ZERODROP_REGISTRY_TOOLS="$(tools/registry/build.sh)"
  export ZERODROP_HELM ZERODROP_PROMTOOL ZERODROP_REGISTRY_TOOLS
  step "cargo test --test tools: the chart, its alerting rules, the image inspector against a real registry"
  cargo test --locked -p zerodrop --test tools
}

stage_e2e() {
  need_go e2e
  stage_tools_quiet
  step "the control plane: etcd, kube-apiserver, kube-controller-manager 1.37 from the Go modules"
  harness
  echo "$ZERODROP_HARNESS_BIN"
  step "cargo test --test e2e: zerodrop behind the real apiserver"
  cargo test --locked -p zerodrop --test e2e
}

# The e2e suite installs the chart, pushes images and installs the Gateway API's HTTPRoute CRD:
# it needs the tools too (built, not tested).
stage_tools_quiet() {
  ZERODROP_HELM="$(tools/helm/build.sh)"
  ZERODROP_REGISTRY_TOOLS="$(tools/registry/build.sh)"
  ZERODROP_GATEWAY_CRDS="$(tools/gateway-api/crds.sh)"
  export ZERODROP_HELM ZERODROP_REGISTRY_TOOLS ZERODROP_GATEWAY_CRDS
}

# The policy mode (1.36+) is in the core: the chart, the command and the scan under it.
CORE=(chart::rendered chart::the_chart_under export_cli scan::under_the_policy generated:: workloads:: pods:: namespaces:: versions:: peers:: drain:: paths::)
release() {
  local release="$1" filter=("${@:2}")
  step "Kubernetes $release: its control plane from the k8s.io/kubernetes module, then the e2e suite ${filter[*]:-(whole)}"
  ZERODROP_HARNESS_BIN="$(tools/harness/build.sh --version "$release")" \
    cargo test --locked -p zerodrop --test e2e -- "${filter[@]}"
}

stage_versions() {
  need_go versions
  stage_tools_quiet
  # The releases with a capability boundary: 1.30 the oldest (sleep beta), 1.33 (`sleep: 0`,
  # native sidecars GA), 1.36 (MutatingAdmissionPolicy GA); 1.37, the newest, is stage e2e.
  release 1.30
  release 1.33 "${CORE[@]}"
  release 1.36 "${CORE[@]}"
}

stage_versions_all() {
  need_go versions-all
  stage_tools_quiet
  release 1.32 "${CORE[@]}"
  release 1.34 "${CORE[@]}"
}

stage_node() {
  need_go node
  step "the experiments' own tests (pytest: reporting, classification, client selection)"
  python3 -m pytest -q -p no:cacheprovider experiments/proof
  step "one real node and two client nodes, kube-proxy in nftables mode (kubelet, kube-proxy, kube-scheduler 1.37, Debian's containerd; root)"
  # The smokes run the test build (dev profile, built by stage fast), not a second compile of
  # the dependency tree for release: the experiments themselves measure the release build.
  export ZERODROP_PROFILE=dev
  experiments/proof/node.sh up --nodes 3 --proxy-mode nftables
  CLEANUP="experiments/proof/node.sh down"
  step "multi-node smoke: the exit app without zerodrop, with it and with the adaptive drain, new connections to the VIP from every node"
  experiments/proof/matrix.py --smoke
  step "traffic path smoke: behind the lagging balancer (8 s), the 5 s sleep loses and the Service marked load-balancer (15 s) loses nothing"
  experiments/proof/matrix.py --smoke-path
  step "traffic matrix smoke: the close-drain app, every client through kube-proxy and Traefik"
  experiments/proof/traffic.py --smoke
  step "zerodrop verify on the node: its cases"
  experiments/proof/verify.py
  step "zerodrop's own upgrade: helm upgrade and rollout restart while pods are created; none unprotected"
  experiments/proof/self_upgrade.py
  step "the adaptive drain's waiter: Ready with it, killed and back, one drain measured quiet"
  experiments/proof/waiter.py --ci
  step "the node down: nothing may be left running, mounted or routed"
  CLEANUP=""
  experiments/proof/node.sh down
}

stage_bench() {
  need_go bench
  step "benchmark scripts, smoke run on the test build (keeps experiments/benchmarks/run.sh working)"
  ZERODROP_PROFILE=dev experiments/benchmarks/run.sh --smoke
}

stages=()
while [ $# -gt 0 ]; do
  case "$1" in
  --stage) stages+=("$2"); shift 2 ;;
  --list) printf '%s\n' "${ALL[@]}" "${EXTRA[@]}"; exit 0 ;;
  *) echo "usage: $0 [--stage NAME]... | --list" >&2; exit 2 ;;
  esac
done
for s in "${stages[@]}"; do
  case " ${ALL[*]} ${EXTRA[*]} " in *" $s "*) ;; *) echo "unknown stage $s (--list)" >&2; exit 2 ;; esac
done

# A lane runs its stages in order, each timed into $times (one "stage seconds status" line).
times="$(mktemp)"
run_lane() {
  local s start status
  for s in "$@"; do
    start=$SECONDS
    printf '\n======== stage %s ========\n' "$s"
    # Each stage in its own shell, its cleanup trap its own; not under `||`, which would turn
    # `set -e` off inside it.
    set +e
    (
      set -e
      CLEANUP=""
      trap '[ -z "$CLEANUP" ] || $CLEANUP || true' EXIT
      trap 'exit 143' TERM
      "stage_${s//-/_}"
      step_done
    )
    status=$?
    set -e
    echo "$s $((SECONDS - start)) $status" >>"$times"
    printf '======== stage %s: %d s%s ========\n' "$s" "$((SECONDS - start))" "$([ $status = 0 ] || echo ", failed ($status)")"
    [ $status = 0 ] || return $status
  done
}
report() {
  local status=$? name took st
  trap - EXIT INT TERM
  if [ -n "${prefetch_pid:-}" ]; then kill -TERM -- "-$prefetch_pid" 2>/dev/null || true; rm -f "$prefetch"; fi
  # Stop what a lane still runs (its stage's trap takes its node down).
  for p in ${lanes:-}; do kill -TERM -- "-$p" 2>/dev/null || true; done
  for p in ${lanes:-}; do
    for _ in $(seq 600); do kill -0 -- "-$p" 2>/dev/null || break; sleep 0.2; done
  done
  # A failed lane's end again, next to the table: two lanes interleave, and CI may keep only
  # the last part of the output.
  for f in "${lanelogs:-/nonexistent}"/*; do
    [ -f "$f" ] && grep -q '^\[[a-z]*\] ======== stage .*, failed' "$f" || continue
    printf '\n======== the last 60 lines of lane %s, which failed ========\n' "$(basename "$f")"
    tail -n 60 "$f"
  done
  [ -z "${lanelogs:-}" ] || rm -rf "$lanelogs"
  printf '\n%-14s %8s\n' stage time
  while read -r name took st; do
    printf '%-14s %7ss%s\n' "$name" "$took" "$([ "$st" = 0 ] || echo "  (failed: $st)")"
  done <"$times"
  printf '%-14s %7ss  (%s)\n' total "$SECONDS" "$([ $status = 0 ] && echo passed || echo "failed: $status")"
  rm -f "$times"
  exit $status
}
trap report EXIT
trap 'exit 130' INT TERM

if [ ${#stages[@]} -gt 0 ]; then
  run_lane "${stages[@]}"
  exit 0
fi
# The whole command: fast first (it fails in minutes and builds what the others share), then
# two lanes side by side, each line tagged with its lane: the node's (mostly waiting on
# rollouts) and the control plane's. The Go builds run at a lower priority than the tests.
# While fast compiles Rust, the control plane and node of 1.37 (what both lanes start from)
# build at a lower priority; a lane that needs it first waits for it (the build scripts lock).
prefetch="$(mktemp)"
set -m
(command -v go >/dev/null && tools/harness/build.sh --node) >"$prefetch" 2>&1 &
prefetch_pid=$!
set +m
run_lane fast
# The tagger outlives a stop so that the stage's cleanup can still say what it did.
# It also keeps the lane's output for the report's tail of a failed lane.
tag() { (trap '' TERM INT; sed -u "s/^/[$1] /" | tee "$lanelogs/$1"); }
lanes=""
lanelogs="$(mktemp -d)"
set -m
(run_lane node 2>&1 | tag node) &
lanes="$lanes $!"
(run_lane tools e2e versions bench 2>&1 | tag apiserver) &
lanes="$lanes $!"
set +m
failed=0
for p in $lanes; do wait "$p" || failed=1; done
lanes=""
exit $failed
