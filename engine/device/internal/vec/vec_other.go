//go:build !amd64 || purego

package vec

// Without the assembly (another architecture, or -tags purego) only the Go
// loops run; the stubs let vec.go compile and are never called.
const haveAVX2 = false

func momentumAVX2(w, grad, v *float32, n int, lr, momentum, weightDecay float32) {
	panic("unreachable")
}
func reluAVX2(y, x *float32, n int)              { panic("unreachable") }
func reluBackwardAVX2(dx, dy, y *float32, n int) { panic("unreachable") }
func addAVX2(dst, src *float32, n int)           { panic("unreachable") }
func normalizeAVX2(dst *float32, src *uint8, n int, scale, shift float32) {
	panic("unreachable")
}
func maxPool2x2AVX2(y *float32, arg *int32, r0, r1 *float32, n int, at, wd int32) int {
	panic("unreachable")
}
func addRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int) {
	panic("unreachable")
}
func copyRowsAVX2(dst *float32, dstStride int, src *float32, srcStride, rows, width int) {
	panic("unreachable")
}
func maxPool2x2x4AVX(y *float32, arg *int32, r0, r1 *float32, at, wd int32) bool {
	panic("unreachable")
}
