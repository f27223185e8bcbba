#!/usr/bin/env bash
# Builds Helm (helm.sh/helm/v4) from the Go module proxy once per module content; prints the
# path of the binary.
exec "$(dirname "$0")/../gotool.sh" helm "$(dirname "$0")" helm.sh/helm/v4/cmd/helm
