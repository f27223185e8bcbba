#!/usr/bin/env bash
# Fetches Kyverno's published Go module (a 10 MB zip from the module proxy, nothing built) and
# keeps its CRDs under $ZERODROP_CACHE/kyverno/crds-<version>: the policies in this directory
# (experiments/peers) are checked against them on every test run, and Kyverno needs them installed to start.
# Prints that directory.
set -euo pipefail
version=v1.19.1
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
out="$cache/kyverno/crds-$version"
if [ -f "$out/kyverno.io_clusterpolicies.yaml" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "go is required to fetch Kyverno's module" >&2; exit 1; }
dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "github.com/kyverno/kyverno@$version" |
  sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
[ -d "$dir/config/crds" ] || { echo "could not download github.com/kyverno/kyverno@$version" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
for d in kyverno policies.kyverno.io reports policyreport; do cp "$dir/config/crds/$d"/*.yaml "$out.tmp/"; done
chmod -R u+w "$out.tmp" && rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
