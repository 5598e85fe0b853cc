//go:build !cpu

package device

// cuBLAS, loaded at run time. The binary is built against the CUDA 11.8
// headers (the oldest driver API we support; gorgonia.org/cu does not compile
// against 13's), but linking -lcublas would tie it to libcublas.so.11, which
// a CUDA 12 or 13 machine does not have. The calls we make kept their
// signatures and enum values from 11 to 13, so dlopen finds whichever major
// version the machine has, and one binary runs on all of them. The calls are
// declared here with plain C types (a handle is a pointer, a status an int),
// so cublas_v2.h is not needed either.
//
// A few lines of cgo instead of gorgonia.org/cu/blas: that package takes
// device memory as Go slices over device addresses and keeps its errors
// sticky inside the handle; here a device pointer stays a CUdeviceptr and
// every call returns its status.

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <cuda.h>

typedef void *bl_handle;

static struct {
	int (*create)(bl_handle *);
	int (*destroy)(bl_handle);
	int (*set_stream)(bl_handle, CUstream);
	int (*set_workspace)(bl_handle, void *, size_t);
	int (*sgemm)(bl_handle, int, int, int, int, int, const float *, const float *, int,
		const float *, int, const float *, float *, int);
	int (*sscal)(bl_handle, int, const float *, float *, int);
	const char *(*status_name)(int);
	const char *(*status_string)(int);
	int (*get_property)(int, int *);
} bl;

// bl_load opens path and resolves every call; NULL on success, else what
// failed (a symbol name, or dlerror's message for the library).
static const char *bl_load(const char *path) {
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		return dlerror();
	}
#define SYM(field, name) \
	if (!(*(void **)&bl.field = dlsym(lib, name))) { dlclose(lib); return "no symbol " name; }
	SYM(create, "cublasCreate_v2")
	SYM(destroy, "cublasDestroy_v2")
	SYM(set_stream, "cublasSetStream_v2")
	SYM(set_workspace, "cublasSetWorkspace_v2")
	SYM(sgemm, "cublasSgemm_v2")
	SYM(sscal, "cublasSscal_v2")
	SYM(status_name, "cublasGetStatusName")
	SYM(status_string, "cublasGetStatusString")
	SYM(get_property, "cublasGetProperty")
#undef SYM
	return NULL;
}

// libraryPropertyType: MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL.
static int bl_version(int *major, int *minor, int *patch) {
	int s = bl.get_property(0, major);
	if (s == 0) s = bl.get_property(1, minor);
	if (s == 0) s = bl.get_property(2, patch);
	return s;
}

static int bl_create(bl_handle *h) { return bl.create(h); }
static int bl_destroy(bl_handle h) { return bl.destroy(h); }
static int bl_set_stream(bl_handle h, CUstream s) { return bl.set_stream(h, s); }
static int bl_set_workspace(bl_handle h, CUdeviceptr p, size_t n) {
	return bl.set_workspace(h, (void *)(uintptr_t)p, n);
}
static const char *bl_status_name(int s) { return bl.status_name(s); }
static const char *bl_status_string(int s) { return bl.status_string(s); }

// alpha and beta go by value so that no Go pointer is handed to C.
// cublasOperation_t: CUBLAS_OP_N = 0, CUBLAS_OP_T = 1.
static int bl_sgemm(bl_handle h, int transa, int transb, int m, int n, int k,
		float alpha, CUdeviceptr a, int lda, CUdeviceptr b, int ldb, float beta, CUdeviceptr c, int ldc) {
	return bl.sgemm(h, transa, transb, m, n, k, &alpha, (const float *)(uintptr_t)a, lda,
		(const float *)(uintptr_t)b, ldb, &beta, (float *)(uintptr_t)c, ldc);
}

static int bl_sscal(bl_handle h, int n, float alpha, CUdeviceptr x) {
	return bl.sscal(h, n, &alpha, (float *)(uintptr_t)x, 1);
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// cublasEnv names a cuBLAS library to load instead of searching for one.
const cublasEnv = "BATCHLAB_CUBLAS"

// cublasNames are the libraries tried, newest first, when cublasEnv is unset.
var cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}

// cublasLib is the cuBLAS this process loaded: once, on first use.
var cublasLib = sync.OnceValues(loadCublas)

// cublasInfo says which cuBLAS was loaded: its file and version.
type cublasInfo struct {
	file, version string
}

func loadCublas() (cublasInfo, error) {
	names := cublasNames
	if p := os.Getenv(cublasEnv); p != "" {
		names = []string{p}
	}
	var tried []string
	for _, name := range names {
		cname := C.CString(name)
		msg := C.bl_load(cname)
		C.free(unsafe.Pointer(cname))
		if msg != nil {
			m := C.GoString(msg) // dlerror's message names the file; ours does not
			if !strings.Contains(m, name) {
				m = name + ": " + m
			}
			tried = append(tried, m)
			continue
		}
		var major, minor, patch C.int
		if err := cublasError("cublasGetProperty", C.bl_version(&major, &minor, &patch)); err != nil {
			return cublasInfo{}, fmt.Errorf("cuBLAS %s: %w", name, err)
		}
		return cublasInfo{name, fmt.Sprintf("%d.%d.%d", major, minor, patch)}, nil
	}
	how := "set " + cublasEnv + " to its path, or add its folder to LD_LIBRARY_PATH"
	if len(names) == 1 {
		how = "fix or unset " + cublasEnv
	}
	return cublasInfo{}, fmt.Errorf("no usable cuBLAS (%s; %s)", strings.Join(tried, "; "), how)
}

// cublasHandle is a cuBLAS handle. It belongs to the CUDA context that was
// current when it was made, and every call on it must run on a thread where
// that context is current.
type cublasHandle struct{ h C.bl_handle }

// cublasError names the cuBLAS call that failed and its status.
func cublasError(call string, s C.int) error {
	if s == 0 { // CUBLAS_STATUS_SUCCESS
		return nil
	}
	return fmt.Errorf("%s: %s (%s)", call, C.GoString(C.bl_status_name(s)), C.GoString(C.bl_status_string(s)))
}

// newCublas makes a handle in the calling thread's context; cuBLAS must be
// loaded (cublasLib).
func newCublas() (*cublasHandle, error) {
	var h cublasHandle
	if err := cublasError("cublasCreate", C.bl_create(&h.h)); err != nil {
		return nil, err
	}
	return &h, nil
}

// setStream makes the handle's calls run on s (by default they run on the
// legacy default stream, unordered with the device's compute stream).
func (h *cublasHandle) setStream(s cu.Stream) error {
	return cublasError("cublasSetStream", C.bl_set_stream(h.h, C.CUstream(unsafe.Pointer(s.C()))))
}

// setWorkspace gives the handle n bytes at p as its only workspace. Without
// one, cuBLAS allocates its own on first use, which a stream capture
// forbids, and inside a capture it picks algorithms that need none: a
// replayed graph would then round differently from the same calls run
// directly. With a workspace of ours it allocates nothing and chooses the
// same algorithm either way.
func (h *cublasHandle) setWorkspace(p cu.DevicePtr, n int64) error {
	return cublasError("cublasSetWorkspace", C.bl_set_workspace(h.h, C.CUdeviceptr(p), C.size_t(n)))
}

func (h *cublasHandle) destroy() error {
	return cublasError("cublasDestroy", C.bl_destroy(h.h))
}

// sgemm is cublasSgemm_v2, column-major, on device pointers.
func (h *cublasHandle) sgemm(g colMajorGemm, alpha float32, a, b cu.DevicePtr, beta float32, c cu.DevicePtr) error {
	return cublasError("cublasSgemm", C.bl_sgemm(h.h, cbool(g.TransA), cbool(g.TransB),
		C.int(g.M), C.int(g.N), C.int(g.K), C.float(alpha), C.CUdeviceptr(a), C.int(g.LDA),
		C.CUdeviceptr(b), C.int(g.LDB), C.float(beta), C.CUdeviceptr(c), C.int(g.LDC)))
}

// sscal is x = alpha·x for n contiguous float32 at x.
func (h *cublasHandle) sscal(n int, alpha float32, x cu.DevicePtr) error {
	return cublasError("cublasSscal", C.bl_sscal(h.h, C.int(n), C.float(alpha), C.CUdeviceptr(x)))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
