// fake.h: what the fake driver (libcuda.so.1) shares with the fake cuBLAS
// (libcublas.so.N), which links against it. See README.md for the model.
#ifndef BATCHLAB_FAKECUDA_H
#define BATCHLAB_FAKECUDA_H

#include <cuda.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fake {

// Fault is the outcome of a piece of device work: CUDA_SUCCESS, or a code
// with the message that explains it.
struct Fault {
	CUresult code = CUDA_SUCCESS;
	std::string msg;
	explicit operator bool() const { return code != CUDA_SUCCESS; }
};

// fail prints "fakecuda: call: NAME: msg" to stderr, remembers msg as the
// calling thread's last error (cuGetErrorString returns it for that code on
// that thread) and returns code.
CUresult fail(const char *call, CUresult code, const std::string &msg);
const char *error_name(CUresult code);

// enter checks that the calling thread has a current context, alive and
// without a sticky error, and returns it in *ctx.
CUresult enter(const char *call, CUcontext *ctx);

// stream_ok checks that s (0: the legacy stream) is a live stream of ctx.
CUresult stream_ok(const char *call, CUcontext ctx, CUstream s);

// Access is a device range that a piece of work touches; n == 0 means "the
// allocation that contains ptr" (a kernel's pointer parameter, whose extent
// the fake cannot know). Every access is checked when the work runs: it
// must lie in a live allocation of the work's context and must not race
// with unordered work on another stream; the allocation's guard zones are
// checked after the work.
struct Access {
	std::uint64_t ptr;
	std::size_t n;
	bool write;
	std::string what; // "C of cublasSgemm_v2", "parameter 2 of relu"
};

// Op is one piece of device work: a kernel, a copy, a memset, a GEMM.
// run is called only after every access passed its checks.
struct Op {
	std::string what; // names the work in messages
	std::vector<Access> access;
	std::function<Fault()> run;
};

// submit issues op on stream s of ctx: recorded into the stream's graph
// while it is capturing; run at once on the calling thread for the legacy
// stream, after every other stream of the context is idle; else queued on
// the stream's worker, which runs it in stream order, after the events it
// waits for and a seeded random delay.
// Issued is where submit queued the op: its stream and its position there
// (stream 0 when it ran at once, or was captured).
struct Issued {
	int stream = 0;
	std::uint64_t pos = 0;
};
CUresult submit(const char *call, CUcontext ctx, CUstream s, Op op, Issued *issued = nullptr);

// capturing reports whether s is capturing.
bool capturing(CUstream s);

// refuse_in_capture fails call and invalidates s's capture when s is
// capturing (for work the fake does not allow in a graph); CUDA_SUCCESS
// when it is not.
CUresult refuse_in_capture(const char *call, CUstream s, const std::string &why);

} // namespace fake

#endif
