//go:build amd64 && !purego

package sgemm

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// haveFMA selects the AVX2+FMA micro-kernel (every x86-64 CPU since 2013–15).
var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sgemmKernel6x16 is microKernelGo in AVX2+FMA assembly (kernel_amd64.s):
// twelve 8-float accumulators hold the 6×16 tile.
//
//go:noescape
func sgemmKernel6x16(k int, a, b, c unsafe.Pointer, ldc int, alpha, beta float32)

func microKernel(k int, a, b, c []float32, ldc int, alpha, beta float32) {
	if !haveFMA {
		microKernelGo(k, a, b, c, ldc, alpha, beta)
		return
	}
	// The bounds the assembly relies on, checked once here.
	_, _, _ = a[k*mr-1], b[k*nr-1], c[(mr-1)*ldc+nr-1]
	sgemmKernel6x16(k, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), ldc, alpha, beta)
}
