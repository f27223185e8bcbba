#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool) from the Go module proxy once per module content; prints the
# path of the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
hash=$(cd "$here" && cat go.mod go.sum tools.go build.sh | sha256sum | cut -c1-16)
out="$cache/promtool/$hash"
if [ -x "$out/promtool" ]; then
  echo "$out/promtool"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build promtool" >&2; exit 1; }
mkdir -p "$out.tmp"
echo "building promtool into $out" >&2
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/" github.com/prometheus/prometheus/cmd/promtool) >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/promtool"
