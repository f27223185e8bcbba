#!/usr/bin/env bash
# Builds a Go tool from the module pinned in DIR (go.mod, go.sum, tools.go) once per content,
# into $ZERODROP_CACHE/NAME/<hash>; prints the path of the binary. With --cached it builds
# nothing: it prints the path if that build exists, else fails (what the tests ask).
# usage: tools/gotool.sh [--cached] NAME DIR PACKAGE [GO BUILD TAGS]
set -euo pipefail
cached=0
if [ "${1:-}" = --cached ]; then cached=1; shift; fi
name="$1" dir="$(cd "$2" && pwd)" package="$3" tags="${4:-}"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
hash=$( (cd "$dir" && cat go.mod go.sum tools.go; cat "$0"; echo "$package $tags") | sha256sum | cut -c1-16)
out="$cache/$name/$hash"
if [ -x "$out/$name" ]; then
  echo "$out/$name"
  exit 0
fi
[ $cached = 0 ] || { echo "$name is not built (tools/gotool.sh $name)" >&2; exit 3; }
command -v go >/dev/null || { echo "go is required to build $name" >&2; exit 1; }
# The test command's lanes may ask for the same tool at once: one builds, the other waits.
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
if [ -x "$out/$name" ]; then
  echo "$out/$name"
  exit 0
fi
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
echo "building $name into $out" >&2
(cd "$dir" && nice -n 10 go build -trimpath -ldflags "-s -w" ${tags:+-tags "$tags"} -o "$out.tmp/" "$package") >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/$name"
