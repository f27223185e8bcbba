#!/usr/bin/env bash
# Writes the Go module that builds one Kubernetes release's control plane for the version
# acceptance suite: tools/harness/versions/<major.minor>/ with k8s.io/kubernetes at VERSION,
# every staging module it replaces locally pinned to the matching v0.x (the same `replace`
# lines as tools/harness), etcd's server at the version that release pins, and the `go` line
# that release declares (so GODEBUG defaults are the ones it was tested with).
#   tools/harness/versions/add.sh v1.30.14
# A staging module whose matching version the module proxy does not serve can be pinned to the
# nearest one that it does (said in the README), and the commands built can be narrowed:
#   tools/harness/versions/add.sh v1.32.13 k8s.io/endpointslice@v0.32.12
#   COMMANDS="kube-apiserver" tools/harness/versions/add.sh v1.29.6
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$1"
shift
overrides=("$@")
commands="${COMMANDS:-kube-apiserver kube-controller-manager}"
minor="$(echo "$version" | sed -E 's/^v1\.([0-9]+)\..*/\1/')"
staging_version="v0.${version#v1.}"
dir="$here/1.$minor"
gomod="$(cd "$here/.." && go mod download -json "k8s.io/kubernetes@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
go_line="$(grep -E '^go [0-9.]+' "$gomod" | head -1)"
etcd="$(grep -E '^\s*go.etcd.io/etcd/server/v3 v' "$gomod" | awk '{print $2}' | head -1)"
[ -n "$etcd" ] || etcd="$(grep -E '^\s*go.etcd.io/etcd/client/v3 v' "$gomod" | awk '{print $2}' | head -1)"
rm -rf "$dir" && mkdir -p "$dir/etcd"
{
  echo "// The control plane of Kubernetes $version for the version acceptance suite (add.sh wrote it)."
  echo "module zerodrop.dev/harness/k8s-1.$minor"
  echo
  echo "$go_line"
  echo
  echo "require ("
  echo "	go.etcd.io/etcd/server/v3 $etcd"
  echo "	k8s.io/kubernetes $version"
  echo ")"
  echo
  echo "replace ("
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u |
    while read -r m; do
      v="$staging_version"
      for o in "${overrides[@]}"; do [ "${o%@*}" = "$m" ] && v="${o#*@}"; done
      echo "	$m => $m $v"
    done
  echo ")"
} >"$dir/go.mod"
{
  echo "//go:build tools"
  echo
  echo "// Package tools pins the Kubernetes commands this module builds."
  echo "package tools"
  echo
  echo "import ("
  for c in $commands; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
  echo ")"
} >"$dir/tools.go"
cat >"$dir/etcd/main.go" <<'GO'
// Command etcd is etcd's own server main, at the version this Kubernetes release pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
(cd "$dir" && go mod tidy)
echo "$dir"
