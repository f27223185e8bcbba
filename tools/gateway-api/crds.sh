#!/usr/bin/env bash
# Fetches the Gateway API's published Go module (sigs.k8s.io/gateway-api, nothing built) and
# keeps its standard-channel CRDs under $ZERODROP_CACHE/gateway-api/crds-<version>: the e2e
# suite installs HTTPRoute from there to test the traffic path index. Prints that directory.
set -euo pipefail
version=v1.6.3
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
out="$cache/gateway-api/crds-$version"
if [ -f "$out/gateway.networking.k8s.io_httproutes.yaml" ]; then echo "$out"; exit 0; fi
command -v go >/dev/null || { echo "go is required to fetch the Gateway API module" >&2; exit 1; }
dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$version" |
  sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
[ -d "$dir/config/crd/standard" ] || { echo "could not download sigs.k8s.io/gateway-api@$version" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
cp "$dir/config/crd/standard"/*.yaml "$out.tmp/"
chmod -R u+w "$out.tmp" && rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
