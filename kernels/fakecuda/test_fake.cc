// test_fake.cc: the fake driver's own tests (make fake-cuda-test). Each
// checks one strictness rule: the call that breaks it returns the right
// code, and the fake's message names the problem.
//
// Every case runs in a process of its own, because the fake reads its
// settings once, a context with a sticky error stays dead, and a fault on a
// guard page aborts: run without arguments, the program re-executes itself
// once per case, with the case's environment, and checks the exit status
// and what the case printed on stderr.
#include <cublas_v2.h>
#include <cuda.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef KERNELS_DIR
#error "build with -DKERNELS_DIR=\"…/kernels\""
#endif

namespace {

int failures;

#define CHECK(cond, ...)                                                                                      \
	do {                                                                                                      \
		if (!(cond)) {                                                                                        \
			std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
			std::fprintf(stderr, __VA_ARGS__);                                                                \
			std::fprintf(stderr, "\n");                                                                       \
			failures++;                                                                                       \
		}                                                                                                     \
	} while (0)

std::string detail(CUresult r) {
	const char *s = nullptr;
	cuGetErrorString(r, &s);
	return s ? s : "";
}

std::string name(CUresult r) {
	const char *s = nullptr;
	cuGetErrorName(r, &s);
	return s ? s : "?";
}

// expect checks r is want and its detailed message contains every phrase.
void expect(const char *what, CUresult r, CUresult want, std::vector<std::string> phrases = {}) {
	CHECK(r == want, "%s: got %s, want %s", what, name(r).c_str(), name(want).c_str());
	if (r != want)
		return;
	std::string d = detail(r);
	for (const std::string &p : phrases)
		CHECK(d.find(p) != std::string::npos, "%s: message %s lacks \"%s\"", what, d.c_str(), p.c_str());
}

#define OK(call)                                                                                              \
	do {                                                                                                      \
		CUresult r_ = (call);                                                                                 \
		if (r_ != CUDA_SUCCESS) {                                                                             \
			std::fprintf(stderr, "FAIL %s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call, name(r_).c_str(),    \
			             detail(r_).c_str());                                                                 \
			std::exit(1);                                                                                     \
		}                                                                                                     \
	} while (0)

std::string read_file(const std::string &path) {
	std::ifstream in(path);
	std::stringstream s;
	s << in.rdbuf();
	return s.str();
}

// Env is a context with the elementwise kernels loaded and two streams.
struct Env {
	CUcontext ctx;
	CUmodule mod;
	CUfunction relu, add_bias;
	CUstream s1, s2;
	Env() {
		OK(cuInit(0));
		CUdevice d;
		OK(cuDeviceGet(&d, 0));
		OK(cuCtxCreate(&ctx, 0, d));
		std::string ptx = read_file(KERNELS_DIR "/elementwise.ptx");
		OK(cuModuleLoadData(&mod, ptx.c_str()));
		OK(cuModuleGetFunction(&relu, mod, "relu"));
		OK(cuModuleGetFunction(&add_bias, mod, "add_bias"));
		OK(cuStreamCreate(&s1, 0));
		OK(cuStreamCreate(&s2, 0));
	}
	CUdeviceptr alloc(size_t n) {
		CUdeviceptr p;
		OK(cuMemAlloc(&p, n));
		return p;
	}
	// launch_relu issues relu(y, x, n) with the parameter buffer form.
	CUresult launch_relu(CUdeviceptr y, CUdeviceptr x, int n, CUstream s, size_t size = 20) {
		unsigned char buf[24] = {};
		std::memcpy(buf, &y, 8);
		std::memcpy(buf + 8, &x, 8);
		std::memcpy(buf + 16, &n, 4);
		void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
		return cuLaunchKernel(relu, 4, 1, 1, 256, 1, 1, 0, s, nullptr, extra);
	}
	// block keeps stream s busy for a while (a large memset), so that what
	// is issued next on it is still queued when the host acts.
	void block(CUstream s) {
		static CUdeviceptr big = alloc(256 << 20);
		OK(cuMemsetD8Async(big, 0, 256 << 20, s));
	}
};

std::vector<float> download(CUdeviceptr p, size_t n) {
	std::vector<float> v(n);
	OK(cuMemcpyDtoH(v.data(), p, n * 4));
	return v;
}

void upload(CUdeviceptr p, const std::vector<float> &v) { OK(cuMemcpyHtoD(p, v.data(), v.size() * 4)); }

// ---- the cases

void wrong_thread() {
	Env e;
	CUdeviceptr p = e.alloc(1024);
	std::thread([&] {
		CUdeviceptr q;
		expect("cuMemAlloc on a thread without a context", cuMemAlloc(&q, 64), CUDA_ERROR_INVALID_CONTEXT,
		       {"no context is current on this thread"});
		expect("cuLaunchKernel on a thread without a context", e.launch_relu(p, p, 256, e.s1),
		       CUDA_ERROR_INVALID_CONTEXT, {"no context is current"});
		cublasHandle_t h;
		CHECK(cublasCreate(&h) == CUBLAS_STATUS_NOT_INITIALIZED, "cublasCreate without a context");
		// Another context current: the first one's stream is not its.
		CUcontext other;
		OK(cuCtxCreate(&other, 0, 0));
		expect("a stream of another context", cuStreamSynchronize(e.s1), CUDA_ERROR_INVALID_CONTEXT,
		       {"belongs to context"});
	}).join();
	OK(cuStreamSynchronize(e.s1)); // the right thread still works
}

void cublas_wrong_context() {
	Env e;
	cublasHandle_t h;
	CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
	CUcontext other;
	OK(cuCtxCreate(&other, 0, 0)); // now current instead of e.ctx
	float one = 1;
	CUdeviceptr a = e.alloc(64);
	cublasStatus_t s =
	    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, (float *)a, 2, (float *)a, 2, &one, (float *)a, 2);
	CHECK(s == CUBLAS_STATUS_NOT_INITIALIZED, "cublasSgemm in another context: status %d", (int)s);
	CHECK(std::strstr(cublasGetStatusString(s), "not the one the handle was created in"), "message: %s",
	      cublasGetStatusString(s));
}

void freed_before_kernel() {
	Env e;
	CUdeviceptr x = e.alloc(4096), y = e.alloc(4096);
	e.block(e.s1);
	OK(e.launch_relu(y, x, 1024, e.s1));
	// The kernel is still queued: freeing its input is the bug.
	expect("cuMemFree of a buffer a queued kernel uses", cuMemFree(x), CUDA_ERROR_ILLEGAL_STATE,
	       {"was freed while kernel relu", "has not synchronized"});
	expect("the kernel then runs on freed memory", cuStreamSynchronize(e.s1), CUDA_ERROR_ILLEGAL_ADDRESS,
	       {"kernel relu", "parameter 1", "was freed"});
	CUdeviceptr q;
	expect("the error is sticky", cuMemAlloc(&q, 64), CUDA_ERROR_ILLEGAL_ADDRESS, {"failed earlier"});
}

void free_after_sync() { // the rule's other side: synchronized, the free is fine
	Env e;
	CUdeviceptr x = e.alloc(4096), y = e.alloc(4096);
	OK(e.launch_relu(y, x, 1024, e.s1));
	OK(cuStreamSynchronize(e.s1));
	OK(cuMemFree(x));
	OK(cuMemFree(y));
}

void host_pointer() {
	Env e;
	std::vector<float> host(1024);
	CUdeviceptr y = e.alloc(4096);
	OK(e.launch_relu(y, (CUdeviceptr)host.data(), 1024, e.s1));
	expect("a host pointer as a kernel argument", cuStreamSynchronize(e.s1), CUDA_ERROR_ILLEGAL_ADDRESS,
	       {"parameter 1", "not a device address"});
}

void host_pointer_copy() {
	Env e;
	std::vector<float> host(16), out(16);
	expect("cuMemcpyDtoH from a host pointer", cuMemcpyDtoH(out.data(), (CUdeviceptr)host.data(), 64),
	       CUDA_ERROR_ILLEGAL_ADDRESS, {"the source", "not a device address"});
}

void copy_past_end() {
	Env e;
	CUdeviceptr p = e.alloc(100);
	std::vector<unsigned char> host(128);
	expect("a copy 28 bytes past the end", cuMemcpyHtoD(p, host.data(), 128), CUDA_ERROR_ILLEGAL_ADDRESS,
	       {"runs 28 bytes past its end"});
}

void canary() {
	Env e;
	// 100 floats: 400 bytes, so the slack after them holds a canary; the
	// kernel writes 8 floats too many into it.
	CUdeviceptr x = e.alloc(4096), y = e.alloc(400);
	OK(cuMemsetD8(x, 0, 4096));
	OK(e.launch_relu(y, x, 108, e.s1));
	expect("a kernel writing past the end of y", cuStreamSynchronize(e.s1), CUDA_ERROR_ILLEGAL_ADDRESS,
	       {"kernel relu", "bytes past the end of allocation", "guard zone"});
}

void guard_page() { // expected to abort
	Env e;
	CUdeviceptr x = e.alloc(4096), y = e.alloc(64 << 10);
	OK(e.launch_relu(y, x, 8192, e.s1)); // reads x 4096 floats too far: its guard page
	cuStreamSynchronize(e.s1);
	std::fprintf(stderr, "FAIL: no fault\n");
	std::exit(1);
}

void capture_alloc() {
	Env e;
	OK(cuStreamBeginCapture(e.s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	CUdeviceptr p;
	expect("cuMemAlloc during a capture", cuMemAlloc(&p, 64), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
	       {"cuMemAlloc_v2 is not allowed while stream", "invalidated"});
	CUgraph g;
	expect("the capture's end", cuStreamEndCapture(e.s1, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
	       {"invalidated by cuMemAlloc_v2"});
	CHECK(g == nullptr, "a graph from an invalidated capture");
}

void capture_sync_calls() {
	Env e;
	std::vector<float> host(4);
	CUdeviceptr p = e.alloc(64);
	OK(cuStreamBeginCapture(e.s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	expect("a synchronous copy during capture", cuMemcpyHtoD(p, host.data(), 16),
	       CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, {"is not allowed while stream"});
	expect("cuCtxSynchronize during capture", cuCtxSynchronize(), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
	expect("cuStreamSynchronize of the capturing stream", cuStreamSynchronize(e.s1),
	       CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, {"is capturing"});
	expect("the legacy stream during capture", cuMemsetD8Async(p, 0, 64, nullptr), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
	       {"legacy stream"});
	CUgraph g;
	expect("the capture's end", cuStreamEndCapture(e.s1, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
	// From another thread, a thread-local capture is not disturbed.
	OK(cuStreamBeginCapture(e.s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	std::thread([&] {
		OK(cuCtxSetCurrent(e.ctx));
		CUdeviceptr q;
		OK(cuMemAlloc(&q, 64));
	}).join();
	OK(cuStreamEndCapture(e.s1, &g));
}

void param_size() {
	Env e;
	CUdeviceptr p = e.alloc(4096);
	expect("a 16-byte parameter buffer for relu's 20", e.launch_relu(p, p, 1024, e.s1, 16), CUDA_ERROR_INVALID_VALUE,
	       {"relu(u64, u64, u32)", "holds 16 bytes", "take 20"});
	expect("a 24-byte buffer (n passed as 8 bytes)", e.launch_relu(p, p, 1024, e.s1, 24), CUDA_ERROR_INVALID_VALUE,
	       {"holds 24 bytes", "take 20"});
	OK(e.launch_relu(p, p, 1024, e.s1, 20));
	void *params[] = {&p, nullptr, nullptr};
	expect("a null kernelParams entry", cuLaunchKernel(e.relu, 1, 1, 1, 32, 1, 1, 0, e.s1, params, nullptr),
	       CUDA_ERROR_INVALID_VALUE, {"kernelParams[1] is null"});
	expect("a block of 2048 threads", cuLaunchKernel(e.relu, 1, 1, 1, 2048, 1, 1, 0, e.s1, params, nullptr),
	       CUDA_ERROR_INVALID_VALUE, {"at most 1024 threads"});
	expect("too much shared memory", cuLaunchKernel(e.relu, 1, 1, 1, 32, 1, 1, 64 << 10, e.s1, params, nullptr),
	       CUDA_ERROR_INVALID_VALUE, {"exceed 48 KiB"});
	OK(cuStreamSynchronize(e.s1));
}

void bad_ptx() {
	Env e;
	CUmodule m;
	char log[512] = {};
	CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
	void *vals[] = {log, (void *)(uintptr_t)sizeof log};
	const char *bad = ".version 7.8\n.target sm_80\n.visible .entry relu(\n\t.param .u99 relu_param_0\n)\n{\n}\n";
	expect("malformed PTX", cuModuleLoadDataEx(&m, bad, 2, opts, vals), CUDA_ERROR_INVALID_PTX, {"line 4"});
	CHECK(std::strstr(log, "line 4"), "JIT log: %s", log);
	const char *unknown = ".version 7.8\n.target sm_80\n.visible .entry nosuch(\n\t.param .u64 p\n)\n{\nret;\n}\n";
	expect("an entry the fake has no kernel for", cuModuleLoadData(&m, unknown), CUDA_ERROR_NOT_FOUND, {"nosuch"});
	const char *stale = ".version 7.8\n.target sm_80\n.visible .entry relu(\n\t.param .u64 a,\n\t.param .u32 n\n)\n{\nret;\n}\n";
	expect("an entry that disagrees with the C kernel", cuModuleLoadData(&m, stale), CUDA_ERROR_INVALID_PTX,
	       {"relu(u64, u32)", "stale"});
}

// The pinned source of an async copy changed after the call, before the
// host synchronized with the copy: its whole pages are read-only until then,
// so the write faults and the fake names it (expected to abort).
void pinned_write() {
	Env e;
	float *pin;
	OK(cuMemHostAlloc((void **)&pin, 4096, 0));
	CUdeviceptr d = e.alloc(4096);
	OK(cuMemcpyHtoDAsync(d, pin, 4096, e.s2));
	pin[7] = 2; // no cuStreamSynchronize or event wait first
	std::fprintf(stderr, "FAIL: the write went through\n");
	std::exit(1);
}

// A source of less than a page cannot be protected; the copy's checksum
// still reports the change when the copy ran after it.
void pinned_changed() {
	Env e;
	float *pin;
	OK(cuMemHostAlloc((void **)&pin, 4096, 0));
	for (int i = 0; i < 1024; i++)
		pin[i] = 1;
	CUdeviceptr d = e.alloc(4096);
	e.block(e.s2);
	OK(cuMemcpyHtoDAsync(d, pin, 1000, e.s2));
	pin[7] = 2; // the copy has not run yet: the stream is busy
	expect("a pinned source changed before its copy ran", cuStreamSynchronize(e.s2), CUDA_ERROR_ILLEGAL_STATE,
	       {"cuMemcpyHtoDAsync_v2 of 1000 bytes", "the host changed the source"});
}

void pinned_waited() { // waiting for the copy before reuse is fine
	Env e;
	float *pin;
	OK(cuMemHostAlloc((void **)&pin, 4096, 0));
	CUdeviceptr d = e.alloc(4096);
	CUevent done;
	OK(cuEventCreate(&done, 0));
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 1024; i++)
			pin[i] = (float)round;
		OK(cuMemcpyHtoDAsync(d, pin, 4096, e.s2));
		OK(cuEventRecord(done, e.s2));
		OK(cuEventSynchronize(done));
		CHECK(download(d, 1024)[1000] == (float)round, "round %d", round);
	}
}

// A kernel on s1 reads what a copy on s2 writes, with no event between
// them: the race check names both.
void missing_wait() {
	Env e;
	std::vector<float> ones(1024, 1.0f);
	CUdeviceptr x = e.alloc(4096), y = e.alloc(4096);
	OK(cuMemcpyHtoDAsync(x, ones.data(), 4096, e.s2));
	OK(e.launch_relu(y, x, 1024, e.s1)); // no cuStreamWaitEvent(s1, copied)
	expect("a kernel unordered with the copy it reads", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_STATE,
	       {"race on allocation", "kernel relu", "cuMemcpyHtoDAsync_v2", "cuStreamWaitEvent"});
}

// The race check knows from the PTX which pointer parameters a kernel
// stores through: two kernels reading x on different streams do not race,
// two writing y do.
void readers_writers() {
	Env e;
	CUdeviceptr x = e.alloc(4096), y1 = e.alloc(4096), y2 = e.alloc(4096);
	OK(cuMemsetD8(x, 0, 4096));
	OK(e.launch_relu(y1, x, 1024, e.s1));
	OK(e.launch_relu(y2, x, 1024, e.s2));
	OK(cuCtxSynchronize());
	OK(e.launch_relu(y1, x, 1024, e.s1));
	OK(e.launch_relu(y1, y2, 1024, e.s2));
	expect("two unordered kernels writing y1", cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_STATE,
	       {"race on allocation", "parameter 0 (relu_param_0)", "write by kernel relu"});
}

void with_wait() { // the same with the wait: no race, and the data arrived
	Env e;
	CUevent copied;
	OK(cuEventCreate(&copied, 0));
	for (int round = 0; round < 20; round++) {
		std::vector<float> v(1024, (float)round);
		CUdeviceptr x = e.alloc(4096), y = e.alloc(4096);
		OK(cuMemcpyHtoDAsync(x, v.data(), 4096, e.s2));
		OK(cuEventRecord(copied, e.s2));
		OK(cuStreamWaitEvent(e.s1, copied, 0));
		OK(e.launch_relu(y, x, 1024, e.s1));
		OK(cuStreamSynchronize(e.s1));
		CHECK(download(y, 1024)[999] == (float)round, "round %d: %f", round, download(y, 1024)[999]);
	}
}

// Without the race check (two kernels on different streams write one
// buffer, which the check forbids, so they are given separate buffers and
// a third stream reads them), the delays alone reorder work: over many
// trials, the second-issued stream's work sometimes runs first.
void delays_reorder() {
	Env e;
	int *flag;
	OK(cuMemHostAlloc((void **)&flag, 64, 0));
	CUdeviceptr a = e.alloc(64), b = e.alloc(64);
	int s1_first = 0, s2_first = 0;
	for (int t = 0; t < 200; t++) {
		CUevent ea, eb;
		OK(cuEventCreate(&ea, 0));
		OK(cuEventCreate(&eb, 0));
		OK(cuMemsetD32Async(a, 1, 16, e.s1));
		OK(cuEventRecord(ea, e.s1));
		OK(cuMemsetD32Async(b, 1, 16, e.s2));
		OK(cuEventRecord(eb, e.s2));
		OK(cuEventSynchronize(ea));
		OK(cuEventSynchronize(eb));
		float ms;
		OK(cuEventElapsedTime(&ms, ea, eb));
		(ms >= 0 ? s1_first : s2_first)++;
	}
	CHECK(s1_first > 0 && s2_first > 0, "issue order always won: s1 first %d, s2 first %d", s1_first, s2_first);
}

void oom() { // FAKECUDA_MEMORY=1MiB
	Env e;
	size_t free, total;
	OK(cuMemGetInfo(&free, &total));
	CHECK(total == 1 << 20, "total %zu", total);
	CUdeviceptr p;
	expect("2 MiB on a 1 MiB device", cuMemAlloc(&p, 2 << 20), CUDA_ERROR_OUT_OF_MEMORY, {"FAKECUDA_MEMORY"});
	OK(cuMemAlloc(&p, 512 << 10));
	size_t free2;
	OK(cuMemGetInfo(&free2, &total));
	CHECK(free - free2 >= 512 << 10, "free %zu then %zu", free, free2);
	OK(cuMemFree(p));
	OK(cuMemGetInfo(&free2, &total));
	CHECK(free2 == free, "free %zu after the free, %zu before", free2, free);
}

// sgemm_ref is C = alpha·op(A)·op(B) + beta·C, column-major, the obvious way.
void sgemm_ref(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float> &A, int lda,
               const std::vector<float> &B, int ldb, float beta, std::vector<float> &C, int ldc) {
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			double s = 0;
			for (int l = 0; l < k; l++)
				s += (double)(ta ? A[l + i * lda] : A[i + l * lda]) * (tb ? B[j + l * ldb] : B[l + j * ldb]);
			C[i + j * ldc] = alpha * (float)s + beta * C[i + j * ldc];
		}
}

void sgemm() {
	Env e;
	cublasHandle_t h;
	CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
	CHECK(cublasSetStream(h, e.s1) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
	const int m = 7, n = 5, k = 9;
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			const int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 1;
			std::vector<float> A(lda * (ta ? m : k)), B(ldb * (tb ? k : n)), C(ldc * n);
			for (size_t i = 0; i < A.size(); i++)
				A[i] = std::sin((float)i);
			for (size_t i = 0; i < B.size(); i++)
				B[i] = std::cos((float)i);
			for (size_t i = 0; i < C.size(); i++)
				C[i] = (float)i / 7;
			CUdeviceptr dA = e.alloc(A.size() * 4), dB = e.alloc(B.size() * 4), dC = e.alloc(C.size() * 4);
			upload(dA, A), upload(dB, B), upload(dC, C);
			float alpha = 1.5f, beta = -0.5f;
			cublasStatus_t s = cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
			                               &alpha, (float *)dA, lda, (float *)dB, ldb, &beta, (float *)dC, ldc);
			CHECK(s == CUBLAS_STATUS_SUCCESS, "sgemm ta=%d tb=%d: %s", ta, tb, cublasGetStatusString(s));
			OK(cuStreamSynchronize(e.s1));
			std::vector<float> got = download(dC, C.size());
			sgemm_ref(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
			for (size_t i = 0; i < C.size(); i++)
				CHECK(std::fabs(got[i] - C[i]) <= 1e-4f * (1 + std::fabs(C[i])), "ta=%d tb=%d C[%zu] = %g, want %g",
				      ta, tb, i, got[i], C[i]);
		}
	float one = 1;
	CUdeviceptr a = e.alloc(64);
	CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, (float *)a, 3, (float *)a, 4, &one, (float *)a, 4) ==
	          CUBLAS_STATUS_INVALID_VALUE,
	      "lda < m accepted");
	CHECK(std::strstr(cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE), "lda 3 < 4"), "message: %s",
	      cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE));
	// A GEMM whose C (4×8) runs past its allocation (4×4).
	CUdeviceptr b = e.alloc(4 * 8 * 4);
	CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 8, 4, &one, (float *)a, 4, (float *)b, 4, &one, (float *)a, 4) ==
	          CUBLAS_STATUS_SUCCESS,
	      "issue");
	expect("a GEMM past the end of C", cuStreamSynchronize(e.s1), CUDA_ERROR_ILLEGAL_ADDRESS,
	       {"cublasSgemm_v2 4×8×4: C 0x", "runs 64 bytes past its end"});
}

// A captured sequence replayed equals the same run eagerly, and reads its
// inputs at replay.
void capture_replay() {
	Env e;
	cublasHandle_t h;
	CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
	CHECK(cublasSetStream(h, e.s1) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
	const int n = 16;
	CUdeviceptr x = e.alloc(n * n * 4), w = e.alloc(n * n * 4), y = e.alloc(n * n * 4), z = e.alloc(n * n * 4);
	float *pin;
	OK(cuMemHostAlloc((void **)&pin, n * n * 4, 0));
	std::vector<float> wv(n * n);
	for (int i = 0; i < n * n; i++)
		wv[i] = std::sin((float)i);
	upload(w, wv);
	float one = 1, zero = 0;
	auto step = [&] { // x from pinned memory; y = x·w; z = relu(y)
		OK(cuMemcpyHtoDAsync(x, pin, n * n * 4, e.s1));
		CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, (float *)x, n, (float *)w, n, &zero, (float *)y,
		                  n) == CUBLAS_STATUS_SUCCESS,
		      "sgemm");
		OK(e.launch_relu(z, y, n * n, e.s1));
	};
	auto fill = [&](int round) {
		for (int i = 0; i < n * n; i++)
			pin[i] = std::cos((float)(i + 31 * round));
	};
	std::vector<std::vector<float>> eager;
	for (int round = 0; round < 3; round++) {
		fill(round);
		step();
		OK(cuStreamSynchronize(e.s1));
		eager.push_back(download(z, n * n));
	}
	OK(cuStreamBeginCapture(e.s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	step();
	CUgraph g;
	OK(cuStreamEndCapture(e.s1, &g));
	CUgraphExec exec;
	OK(cuGraphInstantiateWithFlags(&exec, g, 0));
	for (int round = 0; round < 3; round++) {
		fill(round);
		OK(cuMemsetD8(z, 0, n * n * 4));
		OK(cuGraphLaunch(exec, e.s1));
		OK(cuStreamSynchronize(e.s1));
		CHECK(download(z, n * n) == eager[round], "replay %d differs from the eager run", round);
	}
	OK(cuGraphExecDestroy(exec));
	OK(cuGraphDestroy(g));
}

void first_gemm_in_capture() {
	Env e;
	cublasHandle_t h;
	CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate");
	CHECK(cublasSetStream(h, e.s1) == CUBLAS_STATUS_SUCCESS, "cublasSetStream");
	CUdeviceptr a = e.alloc(64);
	float one = 1;
	OK(cuStreamBeginCapture(e.s1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
	cublasStatus_t s =
	    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, (float *)a, 2, (float *)a, 2, &one, (float *)a, 2);
	CHECK(s == CUBLAS_STATUS_NOT_SUPPORTED, "status %d", (int)s);
	CHECK(std::strstr(cublasGetStatusString(s), "the first GEMM on a cuBLAS handle inside a stream capture"),
	      "message: %s", cublasGetStatusString(s));
	CUgraph g;
	expect("the capture's end", cuStreamEndCapture(e.s1, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

void not_supported() {
	Env e;
	expect("a stub", cuMemcpy(0, 0, 0), CUDA_ERROR_NOT_SUPPORTED, {"cuMemcpy", "not implemented"});
	CUdevice d;
	expect("a second device", cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
	int v;
	OK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
	CHECK(v == 9, "compute capability major %d", v);
	OK(cuDriverGetVersion(&v));
	CHECK(v == 12040, "FAKECUDA_DRIVER_VERSION=12040: got %d", v);
	char dev[64];
	OK(cuDeviceGetName(dev, sizeof dev, 0));
	CHECK(std::strstr(dev, "fake"), "device name %s", dev);
	int major = 0;
	CHECK(cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS && major == 13, "cuBLAS major %d", major);
}

// A fault inside the emulation (a warp shuffle without its whole warp: a
// block of 48 threads for a kernel that needs whole warps) fails the launch
// with CUDA_ERROR_LAUNCH_FAILED, sticky, naming the kernel and the fault.
// Issued with kernelParams, the other argument form.
void emulation_fault() {
	Env e;
	CUmodule rows;
	OK(cuModuleLoadData(&rows, read_file(KERNELS_DIR "/rows.ptx").c_str()));
	CUfunction f;
	OK(cuModuleGetFunction(&f, rows, "softmax_xent"));
	const int n = 4, classes = 10;
	CUdeviceptr grad = e.alloc(n * classes * 4), losses = e.alloc(4), logits = e.alloc(n * classes * 4),
	            labels = e.alloc(n * 4), err = e.alloc(16), none = 0;
	OK(cuMemsetD8(logits, 0, n * classes * 4));
	OK(cuMemsetD8(labels, 0, n * 4));
	int slot = 0, r = n, c = classes;
	float scale = 1;
	void *params[] = {&grad, &losses, &logits, &labels, &slot, &none, &r, &c, &scale, &err, &none}; // no slot base, no guard
	OK(cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, e.s1, params, nullptr)); // whole warps: fine
	OK(cuStreamSynchronize(e.s1));
	OK(cuLaunchKernel(f, 1, 1, 1, 48, 1, 1, 0, e.s1, params, nullptr));
	expect("a shuffle in a partial warp", cuStreamSynchronize(e.s1), CUDA_ERROR_LAUNCH_FAILED,
	       {"kernel softmax_xent", "partial warp"});
}

struct Case {
	const char *name;
	void (*run)();
	const char *env;    // "VAR=value" or ""
	bool aborts;        // the case ends in the fake's abort
	const char *stderr_has; // the fake's line, for the abort cases
};

const Case cases[] = {
    {"wrong_thread", wrong_thread, "", false, ""},
    {"cublas_wrong_context", cublas_wrong_context, "", false, ""},
    {"freed_before_kernel", freed_before_kernel, "", false, ""},
    {"free_after_sync", free_after_sync, "", false, ""},
    {"host_pointer", host_pointer, "", false, ""},
    {"host_pointer_copy", host_pointer_copy, "", false, ""},
    {"copy_past_end", copy_past_end, "", false, ""},
    {"canary", canary, "", false, ""},
    {"guard_page", guard_page, "", true, "fakecuda: kernel relu"},
    {"capture_alloc", capture_alloc, "", false, ""},
    {"capture_sync_calls", capture_sync_calls, "", false, ""},
    {"param_size", param_size, "", false, ""},
    {"bad_ptx", bad_ptx, "", false, ""},
    {"pinned_write", pinned_write, "", true, "fakecuda: write to pinned memory"},
    {"pinned_changed", pinned_changed, "", false, ""},
    {"pinned_waited", pinned_waited, "", false, ""},
    {"missing_wait", missing_wait, "", false, ""},
    {"with_wait", with_wait, "", false, ""},
    {"readers_writers", readers_writers, "", false, ""},
    {"delays_reorder", delays_reorder, "FAKECUDA_DELAY_US=200", false, ""},
    {"oom", oom, "FAKECUDA_MEMORY=1MiB", false, ""},
    {"sgemm", sgemm, "", false, ""},
    {"capture_replay", capture_replay, "", false, ""},
    {"first_gemm_in_capture", first_gemm_in_capture, "", false, ""},
    {"emulation_fault", emulation_fault, "", false, ""},
    {"not_supported", not_supported, "FAKECUDA_DRIVER_VERSION=12040", false, ""},
};

// run_child re-executes this program for one case and checks the outcome.
bool run_child(const char *self, const Case &c) {
	int fd[2];
	if (pipe(fd) != 0)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		if (*c.env)
			putenv((char *)c.env);
		execl(self, self, c.name, (char *)nullptr);
		_exit(127);
	}
	close(fd[1]);
	std::string out;
	char buf[4096];
	for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;)
		out.append(buf, n);
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	bool ok;
	if (c.aborts)
		ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && out.find(c.stderr_has) != std::string::npos;
	else
		ok = WIFEXITED(status) && WEXITSTATUS(status) == 0; // a failed CHECK or OK exits 1
	std::printf("%s %s\n", ok ? "ok  " : "FAIL", c.name);
	if (!ok || std::getenv("FAKECUDA_TEST_VERBOSE"))
		std::printf("%s", out.c_str());
	return ok;
}

} // namespace

int main(int argc, char **argv) {
	if (argc == 2) {
		for (const Case &c : cases)
			if (!std::strcmp(c.name, argv[1])) {
				c.run();
				return failures ? 1 : 0;
			}
		std::fprintf(stderr, "test_fake: no case %s\n", argv[1]);
		return 2;
	}
	int bad = 0;
	for (const Case &c : cases)
		bad += !run_child("/proc/self/exe", c);
	std::printf("%s: %d of %zu cases failed\n", bad ? "FAIL" : "PASS", bad, sizeof cases / sizeof cases[0]);
	return bad ? 1 : 0;
}
