//go:build e2e

// Package e2e holds the end-to-end suite that runs against a real
// single-node cluster (`make test-e2e`); it is built only with -tags e2e.
package e2e
