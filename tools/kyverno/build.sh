#!/usr/bin/env bash
# Builds Kyverno's admission controller (cmd/kyverno) from its published Go module, once per
# version: the module's go.mod has a `replace`, which Go honours only in the main module, so the
# build runs in a writable copy of it. Cached as $ZERODROP_CACHE/kyverno/<hash>/kyverno; prints
# that directory. The version is crds.sh's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=$(sed -nE 's/^version=(.*)$/\1/p' "$here/crds.sh")
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
hash=$(cat "$here/build.sh" "$here/crds.sh" | sha256sum | cut -c1-16)
out="$cache/kyverno/$hash"
if [ -x "$out/kyverno" ]; then echo "$out"; exit 0; fi
"$here/crds.sh" >/dev/null
dir=$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go list -m -json "github.com/kyverno/kyverno@$version" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
src="$cache/kyverno/src-$version"
rm -rf "$src" "$out.tmp" && mkdir -p "$out.tmp" && cp -r "$dir" "$src" && chmod -R u+w "$src"
echo "building Kyverno $version into $out (first build takes several minutes)" >&2
(cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=$version" \
  -o "$out.tmp/kyverno" ./cmd/kyverno) >&2
rm -rf "$src" "$out" && mv "$out.tmp" "$out"
echo "$out"
