#!/usr/bin/env bash
# Builds Helm (helm.sh/helm/v4/cmd/helm) from the Go module proxy once per module content, for
# the chart tests; prints the path of the binary. --cached: only if already built.
exec "$(dirname "$0")/../gotool.sh" "$@" helm "$(dirname "$0")" helm.sh/helm/v4/cmd/helm
