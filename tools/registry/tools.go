//go:build tools

// Package tools pins a real OCI registry (github.com/distribution/distribution/v3/cmd/registry)
// and crane (github.com/google/go-containerregistry/cmd/crane) for the image inspector's tests.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "github.com/google/go-containerregistry/cmd/crane"
)
