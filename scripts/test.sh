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
#   node          the experiments' own tests; one real node; the rollout, traffic and verify smokes
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

step() { printf '\n==> %s\n' "$*"; }
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

# The e2e suite installs the chart and pushes images: it needs the tools too (built, not tested).
stage_tools_quiet() {
  ZERODROP_HELM="$(tools/helm/build.sh)"
  ZERODROP_REGISTRY_TOOLS="$(tools/registry/build.sh)"
  export ZERODROP_HELM ZERODROP_REGISTRY_TOOLS
}

CORE=(chart::rendered generated:: workloads:: pods:: namespaces:: versions:: peers::)
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
  step "one real node (kubelet, kube-proxy, kube-scheduler 1.37, Debian's containerd; root)"
  # The smokes run the test build (dev profile, built by stage fast), not a second compile of
  # the dependency tree for release: the experiments themselves measure the release build.
  export ZERODROP_PROFILE=dev
  experiments/proof/node.sh up
  CLEANUP="experiments/proof/node.sh down"
  step "rollout experiment smoke: the exit app without and with zerodrop"
  experiments/proof/experiment.py --smoke
  step "traffic matrix smoke: the close-drain app, every client through kube-proxy and Traefik"
  experiments/proof/traffic.py --smoke
  step "zerodrop verify on the node: its cases"
  experiments/proof/verify.py
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
[ ${#stages[@]} -gt 0 ] || stages=("${ALL[@]}")
for s in "${stages[@]}"; do
  case " ${ALL[*]} ${EXTRA[*]} " in *" $s "*) ;; *) echo "unknown stage $s (--list)" >&2; exit 2 ;; esac
done

times=()
current=""
CLEANUP=""
report() {
  local status=$?
  [ -z "$CLEANUP" ] || $CLEANUP || true
  printf '\n%-14s %8s\n' stage time
  for t in "${times[@]}"; do printf '%-14s %7ss\n' ${t}; done
  [ -z "$current" ] || printf '%-14s %7ss  (failed)\n' "$current" "$((SECONDS - start))"
  printf '%-14s %7ss  (%s)\n' total "$SECONDS" "$([ $status = 0 ] && echo passed || echo "failed: $status")"
}
trap report EXIT
for s in "${stages[@]}"; do
  start=$SECONDS current="$s"
  printf '\n======== stage %s ========\n' "$s"
  "stage_${s//-/_}"
  took=$((SECONDS - start)) current=""
  times+=("$s $took")
  printf '======== stage %s: %d s ========\n' "$s" "$took"
done
