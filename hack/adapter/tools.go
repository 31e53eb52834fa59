//go:build tools

// Package tools pins the prometheus-adapter command built by hack/build-controlplane.sh.
package tools

import (
	_ "sigs.k8s.io/prometheus-adapter/cmd/adapter"
)
