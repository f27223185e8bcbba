//go:build tools

// Package tools pins promtool (github.com/prometheus/prometheus/cmd/promtool) for the chart's
// PrometheusRule tests: `promtool check rules` and `promtool test rules`.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
