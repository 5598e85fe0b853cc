//go:build !amd64

package sgemm

func microKernel(k int, a, b, c []float32, ldc int, alpha, beta float32) {
	microKernelGo(k, a, b, c, ldc, alpha, beta)
}
