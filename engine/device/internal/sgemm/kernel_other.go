//go:build !amd64 || purego

package sgemm

// microKernel is the portable one: there is no assembly on this
// architecture, or the build has -tags purego.
func microKernel(k int, a, b, c []float32, ldc int, alpha, beta float32) {
	microKernelGo(k, a, b, c, ldc, alpha, beta)
}
