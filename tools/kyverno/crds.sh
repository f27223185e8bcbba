#!/usr/bin/env bash
# Fetches Kyverno's published Go module (a 10 MB zip from the module proxy, nothing built) and
# keeps its CRDs under $ZERODROP_CACHE/kyverno/crds-<version>: the policies in this directory
# (experiments/peers) are checked against them on every test run, and Kyverno needs them installed to start.
# Prints that directory.
set -euo pipefail
version=v1.19.1
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
out="$cache/kyverno/crds-$version"
exec "$(dirname "$0")/../module_files.sh" "github.com/kyverno/kyverno@$version" "$out" \
  kyverno.io_clusterpolicies.yaml config/crds/kyverno config/crds/policies.kyverno.io \
  config/crds/reports config/crds/policyreport
