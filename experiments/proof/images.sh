#!/usr/bin/env bash
# Builds the node's images as OCI archives from binaries built here (no registry, no engine):
#   zerodrop.local/pause:1        the sandbox process (Go, static)
#   zerodrop.local/rollout-app:1  testkit/src/bin/rollout_app.rs (Rust, static) + Debian's dash as /bin/sh
#                                 (a shell that does not exec a lone command, like most
#                                 Debian-based images) + busybox for `sleep`
#   198.18.0.1:5000/rollout-app-shell:1  the same app behind a shell-form CMD (for the node's
#                                 registry: node.sh pushes it)
#   zerodrop.local/zerodrop:1     the webhook (Rust, static)
# and zerodrop itself for the host (`zerodrop load`). Prints the folder holding them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
out="$cache/node/images"
mkdir -p "$out"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

(cd "$root/tools/harness" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/pause" ./cmd/pause) >&2
# Static glibc binaries, stripped (the dist profile, what the Dockerfile ships): the images
# hold nothing but the program.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --profile dist \
  --manifest-path "$root/Cargo.toml" --target x86_64-unknown-linux-gnu \
  --bin zerodrop --example rollout_app >&2
rel="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/dist"
# `zerodrop load` is the experiment's load generator, run on the host.
cp "$rel/zerodrop" "$out/zerodrop"

oci() { python3 "$root/experiments/proof/oci.py" "$@"; }
oci "$out/pause.tar" zerodrop.local/pause:1 --entrypoint '["/pause"]' --user 65535 "$out/pause=/pause"
oci "$out/rollout-app.tar" zerodrop.local/rollout-app:1 --entrypoint '["/rollout-app"]' \
  "$rel/testkit/src/bin/rollout_app.rs=/rollout-app" \
  /bin/dash=/bin/sh /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 \
  /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
  /bin/busybox=/bin/busybox "/bin/sleep->busybox" @/tmp
# The same app as a Debian-based image written with a shell-form `CMD /rollout-app ...`:
# /bin/sh -> dash, and PID 1 comes from the image, not the pod spec. Pushed to the node's
# registry (node.sh), pulled by containerd, inspected by zerodrop.
oci "$out/rollout-app-shell.tar" 198.18.0.1:5000/rollout-app-shell:1 \
  --cmd '["/bin/sh", "-c", "/rollout-app --on-sigterm drain"]' \
  "$rel/testkit/src/bin/rollout_app.rs=/rollout-app" \
  /bin/dash=/bin/dash "/bin/sh->dash" /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 \
  /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
  /bin/busybox=/bin/busybox "/bin/sleep->busybox" @/tmp
oci "$out/zerodrop.tar" zerodrop.local/zerodrop:1 --entrypoint '["/zerodrop"]' --user 65532 \
  "$rel/zerodrop=/zerodrop" @/tmp
echo "$out"
