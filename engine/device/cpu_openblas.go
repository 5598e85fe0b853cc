//go:build openblas

package device

// #cgo pkg-config: openblas
// #include <cblas.h>
import "C"

import (
	"os"
	"unsafe"

	"github.com/batchlab/batchlab/engine/device/internal/sgemm"
)

// CPUGemm names the SGEMM the CPU device runs: OpenBLAS's in this build.
const CPUGemm = "openblas"

// Threads. By default the device splits each product across GOMAXPROCS
// goroutines and OpenBLAS runs single-threaded inside each. OpenBLAS's own
// threads spin for a while after every call and then compete for the cores
// with the goroutines of the elementwise passes: on the 2-core reference
// machine, training the MLP with OpenBLAS on 2 threads instead of the split
// ran 10–25% slower at every batch size, although a lone product ran as
// fast. Where OPENBLAS_NUM_THREADS is set, OpenBLAS threads as it says and
// the device does not split.
var gemmSplits = os.Getenv("OPENBLAS_NUM_THREADS") == ""

// gemmInCgo: the workers spend most of a step inside cgo calls (see
// startHelpers).
const gemmInCgo = true

func init() {
	if gemmSplits {
		C.openblas_set_num_threads(1)
	}
}

func serialGemm(_ *sgemm.Work, g gemmArgs) {
	tA, tB := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if g.transA {
		tA = C.CblasTrans
	}
	if g.transB {
		tB = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, tA, tB, C.blasint(g.m), C.blasint(g.n), C.blasint(g.k),
		C.float(g.alpha), (*C.float)(unsafe.Pointer(&g.a[0])), C.blasint(g.lda),
		(*C.float)(unsafe.Pointer(&g.b[0])), C.blasint(g.ldb),
		C.float(g.beta), (*C.float)(unsafe.Pointer(&g.c[0])), C.blasint(g.ldc))
}
