//go:build !openblas

package device

import "github.com/batchlab/batchlab/engine/device/internal/sgemm"

// CPUGemm names the SGEMM the CPU device runs: the Go one in this build
// (build with -tags openblas for OpenBLAS).
const CPUGemm = "go"

// gemmSplits: the Go SGEMM is single-threaded; the device splits products
// across GOMAXPROCS goroutines.
const gemmSplits = true

// gemmInCgo: the Go SGEMM makes no cgo calls (see startHelpers).
const gemmInCgo = false

func serialGemm(w *sgemm.Work, g gemmArgs) {
	w.Sgemm(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc)
}
