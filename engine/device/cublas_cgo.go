//go:build !cpu

package device

// A few lines of cgo around cuBLAS instead of gorgonia.org/cu/blas: that
// package takes device memory as Go slices over device addresses and keeps
// its errors sticky inside the handle; here a device pointer stays a
// CUdeviceptr and every call returns its status.

/*
#cgo LDFLAGS: -lcublas
#include <stdint.h>
#include <cuda.h>
#include <cublas_v2.h>

// alpha and beta go by value so that no Go pointer is handed to C.
static cublasStatus_t batchlab_sgemm(cublasHandle_t h, int transa, int transb,
		int m, int n, int k, float alpha, CUdeviceptr a, int lda,
		CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) {
	return cublasSgemm_v2(h, transa ? CUBLAS_OP_T : CUBLAS_OP_N, transb ? CUBLAS_OP_T : CUBLAS_OP_N,
		m, n, k, &alpha, (const float *)(uintptr_t)a, lda, (const float *)(uintptr_t)b, ldb,
		&beta, (float *)(uintptr_t)c, ldc);
}

static cublasStatus_t batchlab_sscal(cublasHandle_t h, int n, float alpha, CUdeviceptr x) {
	return cublasSscal_v2(h, n, &alpha, (float *)(uintptr_t)x, 1);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// cublasHandle is a cuBLAS handle. It belongs to the CUDA context that was
// current when it was made, and every call on it must run on a thread where
// that context is current.
type cublasHandle struct{ h C.cublasHandle_t }

// cublasError names the cuBLAS call that failed and its status.
func cublasError(call string, s C.cublasStatus_t) error {
	if s == C.CUBLAS_STATUS_SUCCESS {
		return nil
	}
	return fmt.Errorf("%s: %s (%s)", call, C.GoString(C.cublasGetStatusName(s)), C.GoString(C.cublasGetStatusString(s)))
}

func newCublas() (*cublasHandle, error) {
	var h cublasHandle
	if err := cublasError("cublasCreate", C.cublasCreate_v2(&h.h)); err != nil {
		return nil, err
	}
	return &h, nil
}

// setStream makes the handle's calls run on s (by default they run on the
// legacy default stream, unordered with the device's compute stream).
func (h *cublasHandle) setStream(s cu.Stream) error {
	return cublasError("cublasSetStream", C.cublasSetStream_v2(h.h, C.cudaStream_t(unsafe.Pointer(s.C()))))
}

func (h *cublasHandle) destroy() error {
	return cublasError("cublasDestroy", C.cublasDestroy_v2(h.h))
}

// sgemm is cublasSgemm_v2, column-major, on device pointers.
func (h *cublasHandle) sgemm(g colMajorGemm, alpha float32, a, b cu.DevicePtr, beta float32, c cu.DevicePtr) error {
	return cublasError("cublasSgemm", C.batchlab_sgemm(h.h, cbool(g.TransA), cbool(g.TransB),
		C.int(g.M), C.int(g.N), C.int(g.K), C.float(alpha), C.CUdeviceptr(a), C.int(g.LDA),
		C.CUdeviceptr(b), C.int(g.LDB), C.float(beta), C.CUdeviceptr(c), C.int(g.LDC)))
}

// sscal is x = alpha·x for n contiguous float32 at x.
func (h *cublasHandle) sscal(n int, alpha float32, x cu.DevicePtr) error {
	return cublasError("cublasSscal", C.batchlab_sscal(h.h, C.int(n), C.float(alpha), C.CUdeviceptr(x)))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
