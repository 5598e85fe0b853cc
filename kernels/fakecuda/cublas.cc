// cublas.cc: the fake cuBLAS (libcublas.so.N, N = FAKE_CUBLAS_MAJOR): a
// handle bound to the context current at cublasCreate, SGEMM by a plain
// column-major reference loop and SSCAL, both issued as device work on the
// handle's stream through the fake driver (so they are ordered, checked and
// captured like kernels).
#include "fake.h"

#include <cublas_v2.h>

#include <cstdio>
#include <string>

#ifndef FAKE_CUBLAS_MAJOR
#error "build with -DFAKE_CUBLAS_MAJOR=N"
#endif

struct cublasContext {
	CUcontext ctx;
	CUstream stream = nullptr;
	bool destroyed = false;
	bool gemm_ran = false;  // the first GEMM is where real cuBLAS may allocate its workspace,
	bool workspace = false; // unless it was given one
};

namespace {

thread_local cublasStatus_t last_status = CUBLAS_STATUS_SUCCESS;
thread_local std::string last_msg;

const char *status_name(cublasStatus_t s) {
	switch (s) {
	case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
	case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
	case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
	case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
	case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
	case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
	case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
	case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
	}
	return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t fail(const char *call, cublasStatus_t s, const std::string &msg) {
	std::fprintf(stderr, "fakecuda: %s: %s: %s\n", call, status_name(s), msg.c_str());
	last_status = s;
	last_msg = std::string(call) + ": " + msg;
	return s;
}

// from_driver maps a driver error (already printed by the driver) to a status.
cublasStatus_t from_driver(const char *call, CUresult r) {
	const char *detail;
	cuGetErrorString(r, &detail);
	cublasStatus_t s = CUBLAS_STATUS_EXECUTION_FAILED;
	if (r == CUDA_ERROR_INVALID_CONTEXT)
		s = CUBLAS_STATUS_NOT_INITIALIZED;
	else if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED || r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
	         r == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT || r == CUDA_ERROR_NOT_SUPPORTED)
		s = CUBLAS_STATUS_NOT_SUPPORTED;
	return fail(call, s, std::string("driver: ") + fake::error_name(r) + ": " + (detail ? detail : ""));
}

// enter checks the handle, and that the calling thread's current context is
// the one the handle was made in: cuBLAS runs in the current context.
cublasStatus_t enter(const char *call, cublasHandle_t h) {
	if (!h || h->destroyed)
		return fail(call, CUBLAS_STATUS_NOT_INITIALIZED, "not a live cuBLAS handle");
	CUcontext cur = nullptr;
	cuCtxGetCurrent(&cur);
	if (cur != h->ctx)
		return fail(call, CUBLAS_STATUS_NOT_INITIALIZED,
		            cur ? "this thread's current context is not the one the handle was created in"
		                : "no context is current on this thread; the handle's context must be current where it is used");
	CUcontext ctx;
	if (CUresult r = fake::enter(call, &ctx))
		return from_driver(call, r);
	return CUBLAS_STATUS_SUCCESS;
}

std::string dims(int m, int n, int k) {
	return std::to_string(m) + "×" + std::to_string(n) + "×" + std::to_string(k);
}

// extent is the bytes a column-major rows×cols matrix with leading
// dimension ld spans.
std::size_t extent(int rows, int cols, int ld) {
	return rows == 0 || cols == 0 ? 0 : ((std::size_t)(cols - 1) * ld + rows) * sizeof(float);
}

// sgemm is C = alpha·op(A)·op(B) + beta·C, column-major. Written for the
// compiler to vectorize: op(A) = A walks columns of A (contiguous), op(A) =
// Aᵀ takes dot products along them. beta = 0 ignores C's old contents (NaN
// included), as BLAS defines.
void sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc) {
	std::vector<float> acc(m);
	for (int j = 0; j < n; j++) {
		std::fill(acc.begin(), acc.end(), 0.0f);
		auto b = [&](int l) { return tb ? B[j + (std::size_t)l * ldb] : B[l + (std::size_t)j * ldb]; };
		if (!ta) {
			for (int l = 0; l < k; l++) {
				const float bl = b(l);
				const float *a = A + (std::size_t)l * lda;
				for (int i = 0; i < m; i++)
					acc[i] += a[i] * bl;
			}
		} else {
			for (int i = 0; i < m; i++) {
				const float *a = A + (std::size_t)i * lda;
				float s = 0;
				for (int l = 0; l < k; l++)
					s += a[l] * b(l);
				acc[i] = s;
			}
		}
		float *c = C + (std::size_t)j * ldc;
		for (int i = 0; i < m; i++)
			c[i] = beta == 0.0f ? alpha * acc[i] : alpha * acc[i] + beta * c[i];
	}
}

} // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *ph) {
	if (!ph)
		return fail(__func__, CUBLAS_STATUS_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = fake::enter(__func__, &ctx))
		return from_driver(__func__, r);
	*ph = new cublasContext{ctx};
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
	if (cublasStatus_t s = enter(__func__, h))
		return s;
	h->destroyed = true; // kept: a later use is reported, not a crash
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
	if (cublasStatus_t st = enter(__func__, h))
		return st;
	if (CUresult r = fake::stream_ok(__func__, h->ctx, (CUstream)s))
		return from_driver(__func__, r);
	h->stream = (CUstream)s;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t h, cudaStream_t *s) {
	if (cublasStatus_t st = enter(__func__, h))
		return st;
	if (!s)
		return fail(__func__, CUBLAS_STATUS_INVALID_VALUE, "null pointer");
	*s = (cudaStream_t)h->stream;
	return CUBLAS_STATUS_SUCCESS;
}

// cublasSetWorkspace_v2 gives the handle device memory of the caller's for
// its workspace: then no GEMM allocates, inside a capture or out.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *workspace, size_t size) {
	if (cublasStatus_t st = enter(__func__, h))
		return st;
	if (size > 0) {
		CUdeviceptr base;
		size_t n;
		if (CUresult r = cuMemGetAddressRange_v2(&base, &n, (CUdeviceptr)workspace))
			return from_driver(__func__, r);
		if ((CUdeviceptr)workspace + size > base + n)
			return fail(__func__, CUBLAS_STATUS_INVALID_VALUE,
			            "the workspace of " + std::to_string(size) + " bytes runs past the end of its allocation");
	}
	h->workspace = size > 0;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t h, int *v) {
	if (cublasStatus_t st = enter(__func__, h))
		return st;
	if (!v)
		return fail(__func__, CUBLAS_STATUS_INVALID_VALUE, "null pointer");
	*v = FAKE_CUBLAS_MAJOR * 10000;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int *v) {
	if (!v)
		return fail(__func__, CUBLAS_STATUS_INVALID_VALUE, "null pointer");
	switch (type) {
	case MAJOR_VERSION: *v = FAKE_CUBLAS_MAJOR; break;
	case MINOR_VERSION: *v = 0; break;
	case PATCH_LEVEL: *v = 0; break;
	default: return fail(__func__, CUBLAS_STATUS_INVALID_VALUE, "unknown property " + std::to_string((int)type));
	}
	return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) { return status_name(s); }

// cublasGetStatusString gives the calling thread's last detailed message
// when it has that status.
const char *cublasGetStatusString(cublasStatus_t s) {
	return s == last_status && s != CUBLAS_STATUS_SUCCESS ? last_msg.c_str() : status_name(s);
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc) {
	const char *call = __func__;
	if (cublasStatus_t s = enter(call, h))
		return s;
	auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T; };
	if (!op_ok(transa) || !op_ok(transb))
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, "transa and transb must be CUBLAS_OP_N or CUBLAS_OP_T");
	const bool ta = transa == CUBLAS_OP_T, tb = transb == CUBLAS_OP_T;
	const int arows = ta ? k : m, brows = tb ? n : k;
	const std::string d = dims(m, n, k);
	if (m < 0 || n < 0 || k < 0)
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, "negative size " + d);
	if (lda < std::max(1, arows))
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, d + ": lda " + std::to_string(lda) + " < " +
		                                                   std::to_string(std::max(1, arows)) + " rows of op(A)'s storage");
	if (ldb < std::max(1, brows))
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, d + ": ldb " + std::to_string(ldb) + " < " +
		                                                   std::to_string(std::max(1, brows)) + " rows of op(B)'s storage");
	if (ldc < std::max(1, m))
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, d + ": ldc " + std::to_string(ldc) + " < m");
	if (!alpha || !beta)
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, "null alpha or beta (the fake takes host pointers only)");
	if (m == 0 || n == 0)
		return CUBLAS_STATUS_SUCCESS;
	if (!h->gemm_ran && !h->workspace) {
		if (CUresult r = fake::refuse_in_capture(call, h->stream,
		                                         "the first GEMM on a cuBLAS handle inside a stream capture (real "
		                                         "cuBLAS may allocate its workspace then): run one GEMM before capturing"))
			return from_driver(call, r);
		h->gemm_ran = true;
	}
	const float a = *alpha, b = *beta; // host pointer mode: read at the call
	fake::Op op;
	op.what = std::string(call) + " " + d + (ta ? " Aᵀ" : "") + (tb ? " Bᵀ" : "");
	if (k > 0) {
		op.access.push_back({(std::uint64_t)A, extent(arows, ta ? m : k, lda), false, "A"});
		op.access.push_back({(std::uint64_t)B, extent(brows, tb ? k : n, ldb), false, "B"});
	}
	op.access.push_back({(std::uint64_t)C, extent(m, n, ldc), true, "C"});
	op.run = [=] {
		sgemm(ta, tb, m, n, k, a, A, lda, B, ldb, b, C, ldc);
		return fake::Fault{};
	};
	if (CUresult r = fake::submit(call, h->ctx, h->stream, std::move(op)))
		return from_driver(call, r);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSscal_v2(cublasHandle_t h, int n, const float *alpha, float *x, int incx) {
	const char *call = __func__;
	if (cublasStatus_t s = enter(call, h))
		return s;
	if (!alpha)
		return fail(call, CUBLAS_STATUS_INVALID_VALUE, "null alpha");
	if (n <= 0 || incx <= 0)
		return CUBLAS_STATUS_SUCCESS; // BLAS: nothing to do
	const float a = *alpha;
	fake::Op op;
	op.what = std::string(call) + " of " + std::to_string(n);
	op.access.push_back({(std::uint64_t)x, ((std::size_t)(n - 1) * incx + 1) * sizeof(float), true, "x"});
	op.run = [=] {
		for (int i = 0; i < n; i++)
			x[(std::size_t)i * incx] *= a;
		return fake::Fault{};
	};
	if (CUresult r = fake::submit(call, h->ctx, h->stream, std::move(op)))
		return from_driver(call, r);
	return CUBLAS_STATUS_SUCCESS;
}

// fakecuda_cublas_not_supported is what every cuBLAS call the fake does not
// implement returns (stubs, generated).
cublasStatus_t fakecuda_cublas_not_supported(const char *call) {
	return fail(call, CUBLAS_STATUS_NOT_SUPPORTED, "not implemented by the fake cuBLAS");
}

} // extern "C"
