#!/usr/bin/env bash
# Builds the node's images as OCI archives from binaries built here (no registry, no engine):
#   zerodrop.local/pause:1        the sandbox process (Go, static)
#   zerodrop.local/rollout-app:1  the rollout_app test program (Rust, static) + Debian's dash as /bin/sh
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
# The programs (tools/release.sh): the release build by default, stripped copies in the images;
# with ZERODROP_PROFILE=dev (CI's smokes) the test build, dynamically linked, its C libraries in
# the images beside it.
rel="$("$root/tools/release.sh")"
strip -o "$out/zerodrop" "$rel/zerodrop"
strip -o "$out/rollout-app" "$rel/rollout_app"
libs=()
if [ "${ZERODROP_PROFILE:-release}" = dev ]; then
  for lib in $(ldd "$out/zerodrop" "$out/rollout-app" | awk '/=> \//{print $3} $1 ~ /^\/lib64\//{print $1}' | sort -u); do
    libs+=("$lib=$lib")
  done
fi
# `zerodrop load` is the experiment's load generator, run on the host (the stripped copy).

oci() { python3 "$root/experiments/proof/oci.py" "$@"; }
oci "$out/pause.tar" zerodrop.local/pause:1 --entrypoint '["/pause"]' --user 65535 "$out/pause=/pause"
oci "$out/rollout-app.tar" zerodrop.local/rollout-app:1 --entrypoint '["/rollout-app"]' \
  "$out/rollout-app=/rollout-app" ${libs[@]+"${libs[@]}"} \
  /bin/dash=/bin/sh /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 \
  /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
  /bin/busybox=/bin/busybox "/bin/sleep->busybox" @/tmp
# The same app as a Debian-based image written with a shell-form `CMD /rollout-app ...`:
# /bin/sh -> dash, and PID 1 comes from the image, not the pod spec. Pushed to the node's
# registry (node.sh), pulled by containerd, inspected by zerodrop.
oci "$out/rollout-app-shell.tar" 198.18.0.1:5000/rollout-app-shell:1 \
  --cmd '["/bin/sh", "-c", "/rollout-app --on-sigterm drain"]' \
  "$out/rollout-app=/rollout-app" ${libs[@]+"${libs[@]}"} \
  /bin/dash=/bin/dash "/bin/sh->dash" /lib/x86_64-linux-gnu/libc.so.6=/lib/x86_64-linux-gnu/libc.so.6 \
  /lib64/ld-linux-x86-64.so.2=/lib64/ld-linux-x86-64.so.2 \
  /bin/busybox=/bin/busybox "/bin/sleep->busybox" @/tmp
oci "$out/zerodrop.tar" zerodrop.local/zerodrop:1 --entrypoint '["/zerodrop"]' --user 65532 \
  "$out/zerodrop=/zerodrop" ${libs[@]+"${libs[@]}"} @/tmp
echo "$out"
