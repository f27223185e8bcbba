#!/usr/bin/env bash
# Builds a Go tool from the module pinned in DIR (go.mod, go.sum, tools.go) once per content,
# into $ZERODROP_CACHE/NAME/<hash>; prints the path of the binary.
# usage: tools/gotool.sh NAME DIR PACKAGE
set -euo pipefail
name="$1" dir="$(cd "$2" && pwd)" package="$3"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
hash=$( (cd "$dir" && cat go.mod go.sum tools.go; cat "$0"; echo "$package") | sha256sum | cut -c1-16)
out="$cache/$name/$hash"
if [ -x "$out/$name" ]; then
  echo "$out/$name"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build $name" >&2; exit 1; }
mkdir -p "$out.tmp"
echo "building $name into $out" >&2
(cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/" "$package") >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/$name"
