#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: installs/builds what it needs, then
# runs formatting, lints and every test. README "Test" and .ci/run call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outputs live outside the checkout so CI's fresh clones reuse them.
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
mkdir -p "$ZERODROP_CACHE"
# Artifacts of the zerodrop crate itself bake in their checkout's path (env!("CARGO_MANIFEST_DIR"))
# and cargo reuses them across checkouts when the sources look older; clean them when this
# checkout is not the one that built them (the dependencies stay cached).
mkdir -p "$CARGO_TARGET_DIR"
if [ "$(cat "$CARGO_TARGET_DIR/.checkout" 2>/dev/null)" != "$PWD" ]; then
  cargo clean -p zerodrop >/dev/null 2>&1 || true
  cargo clean -p zerodrop --release >/dev/null 2>&1 || true
  echo "$PWD" >"$CARGO_TARGET_DIR/.checkout"
fi

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "control plane (etcd + kube-apiserver + kube-controller-manager from the Go modules)"
command -v go >/dev/null || { echo "go is required to build the end-to-end control plane"; exit 1; }
ZERODROP_HARNESS_BIN="$(tools/harness/build.sh)"
export ZERODROP_HARNESS_BIN
echo "$ZERODROP_HARNESS_BIN"

step "helm (helm.sh/helm/v4 from the Go modules)"
ZERODROP_HELM="$(tools/helm/build.sh)"
export ZERODROP_HELM
echo "$ZERODROP_HELM"

step "promtool (github.com/prometheus/prometheus from the Go modules: the chart's alerting rules)"
ZERODROP_PROMTOOL="$(tools/promtool/build.sh)"
export ZERODROP_PROMTOOL
echo "$ZERODROP_PROMTOOL"

step "registry tools (distribution's registry, crane, htpasswd from the Go modules: the image inspector's tests)"
ZERODROP_REGISTRY_TOOLS="$(tools/registry/build.sh)"
export ZERODROP_REGISTRY_TOOLS
echo "$ZERODROP_REGISTRY_TOOLS"

step "cargo test (unit, property, server, chart, end-to-end)"
# The examples as programs (tests/rollout_tools runs them; --all-targets builds them as tests).
cargo build --examples --locked
cargo test --workspace --all-targets --locked

step "Kubernetes releases: the acceptance core on 1.32, 1.33, 1.34, 1.36 and the whole end-to-end suite on 1.30 (1.37 ran above)"
# One release at a time (2 cores): its control plane built from the k8s.io/kubernetes module
# (cached by content), then the same test binary against it.
core=(e2e::chart::rendered e2e::generated e2e::workloads e2e::pods e2e::namespaces e2e::versions e2e::peers)
for release in 1.30 1.32 1.33 1.34 1.36; do
  bin="$(tools/harness/build.sh --version "$release")"
  echo "Kubernetes $release: $bin"
  if [ "$release" = 1.30 ]; then filter=(e2e::); else filter=("${core[@]}"); fi
  ZERODROP_HARNESS_BIN="$bin" cargo test --locked -p zerodrop --test suite -- "${filter[@]}"
done

step "rollout experiment: its reporting (pytest), then a real node (smoke: the exit app without and with zerodrop, once; the traffic matrix's close-drain cell through kube-proxy and Traefik; zerodrop verify's cases)"
python3 -m pytest -q -p no:cacheprovider experiments/proof
# Root and Debian's containerd/runc/CNI plugins (node.sh installs them when missing): the
# node runs real containers (experiments/proof). The smokes build the traffic tools they use.
experiments/proof/node.sh up
trap 'experiments/proof/node.sh down' EXIT
experiments/proof/experiment.py --smoke
experiments/proof/traffic.py --smoke
experiments/proof/verify.py
experiments/proof/node.sh down
trap - EXIT

step "benchmark scripts (smoke run: keeps experiments/benchmarks/run.sh working; numbers are not judged here)"
experiments/benchmarks/run.sh --smoke
