#!/usr/bin/env bash
# The Gateway API's standard-channel CRDs from its published Go module (sigs.k8s.io/gateway-api),
# under $ZERODROP_CACHE/gateway-api/crds-<version>: the e2e suite installs HTTPRoute from there
# to test the traffic path index. Prints that directory.
set -euo pipefail
version=v1.6.3
cache="${ZERODROP_CACHE:-$HOME/.cache/zerodrop}"
exec "$(dirname "$0")/../module_files.sh" "sigs.k8s.io/gateway-api@$version" \
  "$cache/gateway-api/crds-$version" gateway.networking.k8s.io_httproutes.yaml config/crd/standard
