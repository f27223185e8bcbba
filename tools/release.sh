#!/usr/bin/env bash
# The programs the node and the benchmarks run: zerodrop and the test programs
# (zerodrop-testkit's binaries), built once per profile and shared. Prints their folder.
#   tools/release.sh [build|bench] [CARGO ARGS...]
# Profile, from ZERODROP_PROFILE:
#   release (default): static glibc with line tables, what the experiments measure; the node's
#            images strip copies, and `cargo bench` shares its dependencies (same target, flags).
#   dev:     the test build itself (scripts/test.sh's fast stage compiled it), dynamically
#            linked: CI's smokes run it, so the dependency tree is not compiled a second time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${ZERODROP_CACHE:-$HOME/.cache/zerodrop}/target}"
profile="${ZERODROP_PROFILE:-release}"
case "$profile" in
release)
  # Static: the images hold nothing but the program.
  export RUSTFLAGS="-C target-feature=+crt-static"
  flags=(--release --target x86_64-unknown-linux-gnu)
  dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
  bench_flags=(--target x86_64-unknown-linux-gnu)
  ;;
dev)
  flags=()
  dir="$CARGO_TARGET_DIR/debug"
  bench_flags=(--profile dev)
  ;;
*) echo "ZERODROP_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
case "${1:-build}" in
build)
  [ $# -gt 0 ] && shift
  cargo build --quiet --locked --manifest-path "$root/Cargo.toml" "${flags[@]}" \
    -p zerodrop --bin zerodrop -p zerodrop-testkit --bins "$@" >&2
  echo "$dir"
  ;;
bench)
  shift
  cargo bench --locked --manifest-path "$root/Cargo.toml" "${bench_flags[@]}" "$@"
  ;;
*) echo "usage: $0 [build|bench] [cargo args]" >&2; exit 2 ;;
esac
