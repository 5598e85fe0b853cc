//go:build amd64 && !purego

package vec

import "golang.org/x/sys/cpu"

// haveAVX2 selects the assembly loops.
var haveAVX2 = cpu.X86.HasAVX2

// The assembly loops of vec_amd64.s; n is a positive multiple of 8.

//go:noescape
func momentumAVX2(w, grad, v *float32, n int, lr, momentum, weightDecay float32)

//go:noescape
func reluAVX2(y, x *float32, n int)

//go:noescape
func reluBackwardAVX2(dx, dy, y *float32, n int)

//go:noescape
func addAVX2(dst, src *float32, n int)

//go:noescape
func normalizeAVX2(dst *float32, src *uint8, n int, scale, shift float32)

//go:noescape
func maxPool2x2AVX2(y *float32, arg *int32, r0, r1 *float32, n int, at, wd int32) int

//go:noescape
func addRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int)

//go:noescape
func copyRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int)

//go:noescape
func maxPool2x2x4AVX(y *float32, arg *int32, r0, r1 *float32, at, wd int32) bool
