//go:build !amd64 || purego

package sgemm

import "testing"

// TestSgemmGoKernel checks the products on the portable micro-kernel, the
// only one in this build.
func TestSgemmGoKernel(t *testing.T) { testProducts(t) }
