#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool) from the Go module proxy once
# per module content, for the chart's alerting rules; prints the path of the binary. Built with
# Prometheus' own `remove_all_sd` tag: the rule checks and rule unit tests are the same, without
# compiling every cloud's service-discovery client. --cached: only if already built.
exec "$(dirname "$0")/../gotool.sh" "$@" promtool "$(dirname "$0")" github.com/prometheus/prometheus/cmd/promtool remove_all_sd
