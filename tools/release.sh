#!/usr/bin/env bash
# The one release build of the test command: zerodrop and the test programs (zerodrop-testkit's
# binaries), static glibc, with line tables. The node's images strip copies of it, the
# benchmarks run it and `cargo bench` shares its dependencies (same target, same flags), so the
# dependency tree is compiled for release once. Prints the folder holding the binaries.
# usage: tools/release.sh [build|bench] [CARGO ARGS...]   (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${ZERODROP_CACHE:-$HOME/.cache/zerodrop}/target}"
# Static: the images hold nothing but the program.
export RUSTFLAGS="-C target-feature=+crt-static"
target=x86_64-unknown-linux-gnu
case "${1:-build}" in
build)
  [ $# -gt 0 ] && shift
  cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" --target "$target" \
    -p zerodrop --bin zerodrop -p zerodrop-testkit --bins "$@" >&2
  echo "$CARGO_TARGET_DIR/$target/release"
  ;;
bench)
  shift
  cargo bench --locked --manifest-path "$root/Cargo.toml" --target "$target" "$@"
  ;;
*) echo "usage: $0 [build|bench] [cargo args]" >&2; exit 2 ;;
esac
