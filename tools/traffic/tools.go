//go:build tools

// Package tools pins the load generator of the traffic matrix (experiments/proof).
package tools

import _ "github.com/tsenart/vegeta/v12"
