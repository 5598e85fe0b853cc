//go:build amd64 && !purego

package sgemm

import (
	"testing"

	"github.com/batchlab/batchlab/engine/device/internal/cpuflags"
)

// TestSgemmAssemblyKernel checks the products on the AVX2+FMA micro-kernel.
// It fails where the CPU has AVX2 and FMA and the kernel is off, and skips
// only where the CPU lacks them.
func TestSgemmAssemblyKernel(t *testing.T) {
	cpuflags.RequireAssembly(t, haveFMA, "avx2", "fma")
	testProducts(t)
}

// TestSgemmGoKernel runs the same checks on the portable micro-kernel.
func TestSgemmGoKernel(t *testing.T) {
	defer func(h bool) { haveFMA = h }(haveFMA)
	haveFMA = false
	testProducts(t)
}
