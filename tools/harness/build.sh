#!/usr/bin/env bash
# Builds the end-to-end control plane (etcd, kube-apiserver, kube-controller-manager and the
# controlplane launcher) from the official Go modules, once per module content: the binaries
# are cached under $ZERODROP_CACHE/harness/<hash>, and Go's build cache makes rebuilds cheap.
# With --node it also builds the worker (kubelet, kube-proxy, kube-scheduler) and kubectl.
# With --version 1.N it builds that release's control plane from tools/harness/versions/1.N
# (the launcher is this module's) into $ZERODROP_CACHE/harness/k8s-1.N-<hash>.
# Prints the directory holding the binaries. --cached (first): build nothing, print the directory
# only if that build exists (what the tests ask).
set -euo pipefail
cached=0
if [ "${1:-}" = --cached ]; then cached=1; shift; fi
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
module="$here"
case "${1:-}" in
--version)
  module="$here/versions/$2"
  [ -f "$module/go.mod" ] || { echo "no module for Kubernetes $2 in $module (tools/harness/versions/add.sh)" >&2; exit 2; }
  hash=$(cd "$module" && cat go.mod go.sum tools.go etcd/main.go "$here/build.sh" | sha256sum | cut -c1-16)
  out="$cache/harness/k8s-$2-$hash"
  targets=(./etcd)
  for c in $(grep -oE 'k8s.io/kubernetes/cmd/[a-z-]+' "$module/tools.go"); do targets+=("$c"); done
  ;;
*)
  hash=$(cd "$here" && cat go.mod go.sum build.sh $(find cmd -name '*.go' | sort) | sha256sum | cut -c1-16)
  out="$cache/harness/$hash"
  targets=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./cmd/etcd ./cmd/controlplane)
  if [ "${1:-}" = "--node" ]; then
    targets+=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  fi
  ;;
esac
missing=0
for t in "${targets[@]}"; do
  [ -x "$out/$(basename "$t")" ] || missing=1
done
if [ "$module" != "$here" ] && [ ! -x "$out/controlplane" ]; then missing=1; fi
if [ $missing = 0 ]; then
  echo "$out"
  exit 0
fi
[ $cached = 0 ] || { echo "not built: tools/harness/build.sh $*" >&2; exit 3; }
command -v go >/dev/null || { echo "go is required to build the control plane" >&2; exit 1; }
# The test command's lanes may ask for the same build at once: one builds, the other waits and
# builds only what is still missing.
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
missing=0
for t in "${targets[@]}"; do
  [ -x "$out/$(basename "$t")" ] || missing=1
done
if [ "$module" != "$here" ] && [ ! -x "$out/controlplane" ]; then missing=1; fi
if [ $missing = 0 ]; then
  echo "$out"
  exit 0
fi
k8s=$(cd "$module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
major=$(echo "$k8s" | sed -E 's/^v([0-9]+)\..*/\1/')
minor=$(echo "$k8s" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
# Kubernetes stamps its version at link time; without it the apiserver reports v0.0.0-master.
ldflags="-s -w"
for kv in "gitVersion=$k8s" "gitMajor=$major" "gitMinor=$minor" "gitTreeState=clean" "buildDate=1970-01-01T00:00:00Z"; do
  ldflags="$ldflags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
echo "building Kubernetes $k8s into $out (first build takes several minutes)" >&2
(cd "$module" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/" "${targets[@]}") >&2
if [ "$module" != "$here" ]; then
  cp "$("$here/build.sh")/controlplane" "$out.tmp/"
fi
# Keep what an earlier run built (the worker binaries) next to the new ones.
if [ -d "$out" ]; then cp -n "$out"/* "$out.tmp/" 2>/dev/null || true; fi
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
