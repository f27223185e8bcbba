#!/usr/bin/env bash
# One real Kubernetes node on this machine (root): `node.sh up` builds what it needs, starts
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet and
# kube-proxy, waits for the node to be Ready and prints the kubeconfig; `node.sh down` stops it
# all and checks that nothing is left running, mounted or routed. `node.sh status` says which.
# `up --nodes N` adds N-1 client nodes (network namespaces with their own kube-proxy, no pods);
# `--proxy-mode iptables|nftables` is kube-proxy's mode on all of them.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${ZERODROP_NODE_DIR:-/tmp/zerodrop-node}"

alive() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

# Debian's parts of the node: checked (and installed when missing) before any build, so a
# missing one fails in seconds, not after half an hour of building.
PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack busybox-static curl)
packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages the node needs: ${missing[*]}" >&2
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2; then
    echo "node.sh: could not install ${missing[*]} (apt-get install ${missing[*]}); the node needs them" >&2
    exit 1
  fi
}

clean() {
  local found=0
  if pgrep -f -- "$dir/" >/dev/null; then echo "left running:"; pgrep -af -- "$dir/"; found=1; fi
  if grep -q " $dir/" /proc/self/mountinfo; then echo "left mounted:"; grep " $dir/" /proc/self/mountinfo | cut -d' ' -f5; found=1; fi
  if ip link show zd0 >/dev/null 2>&1; then echo "left: bridge zd0"; found=1; fi
  if { iptables-save; ip6tables-save; } 2>/dev/null | grep -q ':KUBE-'; then echo "left: KUBE-* iptables chains"; found=1; fi
  if nft list tables 2>/dev/null | grep -q ' kube-proxy$'; then echo "left: kube-proxy nftables tables"; found=1; fi
  if ip netns list 2>/dev/null | grep -q '^zd-c'; then echo "left: client node namespaces"; ip netns list | grep '^zd-c'; found=1; fi
  if ip link show 2>/dev/null | grep -q ' zdv[0-9]*@'; then echo "left: client node veths"; found=1; fi
  if compgen -G "/sys/fs/cgroup/*/k8s.io" >/dev/null; then echo "left: cgroups /sys/fs/cgroup/*/k8s.io"; found=1; fi
  return $found
}

case "${1:-}" in
up)
  shift
  nodes=1 mode=iptables
  while [ $# -gt 0 ]; do
    case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --proxy-mode) mode="$2"; shift 2 ;;
    *) echo "node.sh up: unknown argument $1 (--nodes N, --proxy-mode iptables|nftables)" >&2; exit 2 ;;
    esac
  done
  [[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] || { echo "--nodes $nodes: a count, 1 or more" >&2; exit 2; }
  case "$mode" in iptables|nftables) ;; *) echo "--proxy-mode $mode: iptables or nftables (no IP_VS in this kernel)" >&2; exit 2 ;; esac
  if alive; then
    if [ "$(cat "$dir/topology" 2>/dev/null)" != "$nodes $mode" ]; then
      echo "a node is up with another shape ($(cat "$dir/topology" 2>/dev/null)): node.sh down first" >&2; exit 1
    fi
    echo "node already up: export KUBECONFIG=$dir/kubeconfig"; exit 0
  fi
  [ "$(id -u)" = 0 ] || { echo "node.sh up needs root (containerd, iptables, mounts)" >&2; exit 1; }
  packages
  bin="$("$root/tools/harness/build.sh" --node)"
  images="$("$root/experiments/proof/images.sh")"
  tools="$("$root/tools/registry/build.sh")"
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$nodes $mode" >"$dir/topology"
  setsid "$bin/controlplane" --bin "$bin" --dir "$dir" --node --watch-stdin=false \
    --clients $((nodes - 1)) --proxy-mode "$mode" \
    --images "$images/pause.tar,$images/rollout-app.tar,$images/zerodrop.tar" --registry "$tools/registry" \
    >"$dir/ready.out" 2>"$dir/launcher.log" </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 600); do
    if grep -q '^READY' "$dir/ready.out"; then
      echo "$images" >"$dir/images"
      # The shell-form image goes through the node's registry: containerd pulls it.
      mkdir -p "$dir/layout" && tar -xf "$images/rollout-app-shell.tar" -C "$dir/layout"
      "$tools/crane" push --insecure "$dir/layout" 198.18.0.1:5000/rollout-app-shell:1 >&2
      echo "node up: export KUBECONFIG=$dir/kubeconfig   (kubectl: $bin/kubectl, logs: $dir/*.log)"
      exit 0
    fi
    alive || break
    sleep 0.5
  done
  echo "node did not come up; launcher log:" >&2
  tail -30 "$dir/launcher.log" >&2
  "$0" down >&2 || true
  exit 1
  ;;
down)
  if alive; then
    kill -TERM "$(cat "$dir/pid")"
    for _ in $(seq 240); do alive || break; sleep 0.5; done
    alive && { echo "launcher did not stop" >&2; exit 1; }
  fi
  rm -f "$dir/pid" "$dir/topology"
  if clean; then echo "node down, nothing left running, mounted or routed"; else exit 1; fi
  ;;
status)
  if alive; then echo "up ($(cat "$dir/topology" 2>/dev/null) nodes/mode): export KUBECONFIG=$dir/kubeconfig"; else echo "down"; fi
  ;;
*)
  echo "usage: $0 up [--nodes N] [--proxy-mode iptables|nftables]|down|status   (state in \$ZERODROP_NODE_DIR, default /tmp/zerodrop-node)" >&2
  exit 2
  ;;
esac
