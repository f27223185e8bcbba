#!/usr/bin/env bash
# Builds Helm (helm.sh/helm/v4) from the Go module proxy once per module content; prints the
# path of the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
hash=$(cd "$here" && cat go.mod go.sum tools.go build.sh | sha256sum | cut -c1-16)
out="$cache/helm/$hash"
if [ -x "$out/helm" ]; then
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build helm" >&2; exit 1; }
mkdir -p "$out.tmp"
echo "building helm into $out" >&2
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/" helm.sh/helm/v4/cmd/helm) >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/helm"
