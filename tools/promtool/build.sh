#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus/cmd/promtool) from the Go module proxy once
# per module content, for the chart's alerting rules; prints the path of the binary.
exec "$(dirname "$0")/../gotool.sh" promtool "$(dirname "$0")" github.com/prometheus/prometheus/cmd/promtool
