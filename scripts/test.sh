#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: installs/builds what it needs, then
# runs formatting, lints and every test. README "Test" and .ci/run call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build outputs live outside the checkout so CI's fresh clones reuse them.
export ZERODROP_CACHE="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ZERODROP_CACHE/target}"
mkdir -p "$ZERODROP_CACHE"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --all-targets --locked
