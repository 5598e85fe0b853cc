// driver.cc: the fake driver's core: settings, errors, the device,
// contexts, streams and their workers, events, stream capture and graphs.
// Memory is in memory.cc, modules and launches in module.cc.
//
// Everything a real driver leaves to luck is made deterministic or loud
// here (README.md): contexts are current per OS thread, every stream is a
// worker thread that delays each item by a seeded random time, and a
// happens-before check (vector clocks over the streams, the host and the
// legacy stream) reports two pieces of work that touch one allocation with
// nothing ordering them, instead of hoping the timing shows it.
#include "driver.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fake {

std::mutex &mu = *new std::mutex;
std::condition_variable &changed = *new std::condition_variable;

namespace {

// handles: see driver.h. A set allocated once and never destroyed, like mu.
std::unordered_set<const void *> &handles = *new std::unordered_set<const void *>;

thread_local std::vector<CUctx_st *> ctx_stack; // the top is current
thread_local CUresult last_code = CUDA_SUCCESS;
thread_local std::string last_msg;

std::uint64_t next_ctx = 1;
std::vector<CUstream_st *> &capturing_streams = *new std::vector<CUstream_st *>;

long thread_id() { return (long)syscall(SYS_gettid); }

// parse_size reads "4GiB", "512MiB", "64KiB" or a byte count.
bool parse_size(const char *s, std::uint64_t *out) {
	char *end;
	errno = 0;
	unsigned long long v = std::strtoull(s, &end, 10);
	if (end == s || errno)
		return false;
	std::uint64_t mul = 1;
	if (!std::strcmp(end, "KiB"))
		mul = 1ull << 10;
	else if (!std::strcmp(end, "MiB"))
		mul = 1ull << 20;
	else if (!std::strcmp(end, "GiB"))
		mul = 1ull << 30;
	else if (*end)
		return false;
	*out = v * mul;
	return *out > 0;
}

Settings read_settings() {
	Settings s{4ull << 30, 1, 50, 13000};
	auto bad = [](const char *var, const char *v, const char *want) {
		std::fprintf(stderr, "fakecuda: %s=%s: want %s\n", var, v, want);
		std::exit(2);
	};
	if (const char *v = std::getenv("FAKECUDA_MEMORY"); v && *v && !parse_size(v, &s.memory))
		bad("FAKECUDA_MEMORY", v, "a size such as 512MiB, 2GiB or a byte count");
	if (const char *v = std::getenv("FAKECUDA_SEED"); v && *v) {
		char *end;
		s.seed = std::strtoull(v, &end, 10);
		if (*end)
			bad("FAKECUDA_SEED", v, "an unsigned integer");
	}
	if (const char *v = std::getenv("FAKECUDA_DELAY_US"); v && *v) {
		char *end;
		unsigned long d = std::strtoul(v, &end, 10);
		if (*end || d > 1000000)
			bad("FAKECUDA_DELAY_US", v, "microseconds from 0 to 1000000");
		s.delay_us = (unsigned)d;
	}
	if (const char *v = std::getenv("FAKECUDA_DRIVER_VERSION"); v && *v) {
		char *end;
		long d = std::strtol(v, &end, 10);
		if (*end || d < 1000)
			bad("FAKECUDA_DRIVER_VERSION", v, "a version as cuDriverGetVersion gives it, e.g. 13000 or 11080");
		s.driver_version = (int)d;
	}
	return s;
}

struct ErrorName {
	CUresult code;
	const char *name;
};
const ErrorName error_names[] = {
#include "errors.inc" // generated from cuda.h by the Makefile
};

} // namespace

const Settings &settings() {
	static const Settings s = read_settings();
	return s;
}

bool known(const void *h) { return h && handles.count(h); }
void remember(const void *h) { handles.insert(h); }

void join(Clock &into, const Clock &from) {
	if (into.size() < from.size())
		into.resize(from.size());
	for (std::size_t i = 0; i < from.size(); i++)
		into[i] = std::max(into[i], from[i]);
}

std::uint64_t at(const Clock &c, int i) { return (std::size_t)i < c.size() ? c[i] : 0; }

static void tick(Clock &c, int i) {
	if (c.size() <= (std::size_t)i)
		c.resize(i + 1);
	c[i]++;
}

const char *error_name(CUresult code) {
	for (const ErrorName &e : error_names)
		if (e.code == code)
			return e.name;
	return nullptr;
}

// set_last_error makes msg the calling thread's last error, for cuGetErrorString.
static CUresult set_last_error(const char *call, CUresult code, const std::string &msg) {
	last_code = code;
	last_msg = std::string(call) + ": " + msg;
	return code;
}

CUresult fail(const char *call, CUresult code, const std::string &msg) {
	const char *name = error_name(code);
	std::fprintf(stderr, "fakecuda: %s: %s: %s\n", call, name ? name : "CUDA_ERROR_UNKNOWN", msg.c_str());
	return set_last_error(call, code, msg);
}

// fail_locked is fail for callers holding mu, which fail itself does not need.
#define FAIL(code, msg) fail(__func__, code, msg)

// set_sticky records an asynchronous failure as the context's death.
static void set_sticky(CUctx_st *ctx, const Fault &f, const std::string &where) {
	if (ctx->sticky)
		return;
	ctx->sticky = f;
	ctx->sticky.msg = where + ": " + f.msg;
	std::fprintf(stderr, "fakecuda: %s: %s: %s (the context is dead: every later call returns this error)\n",
	             where.c_str(), error_name(f.code), f.msg.c_str());
}

// sticky_error is what a call in a dead context returns. The first few
// say so on stderr; after that only cuGetErrorString does, so that a
// cleanup's dozens of calls do not bury the first error.
static CUresult sticky_error(const char *call, CUctx_st *ctx) {
	const std::string msg = "the context failed earlier, in " + ctx->sticky.msg;
	if (++ctx->sticky_reports <= 3)
		return fail(call, ctx->sticky.code, msg);
	if (ctx->sticky_reports == 4)
		std::fprintf(stderr, "fakecuda: %s: %s: ... (later calls in this dead context return it without a line here)\n",
		             call, error_name(ctx->sticky.code));
	return set_last_error(call, ctx->sticky.code, msg);
}

static CUresult current(const char *call, CUctx_st **out) {
	if (ctx_stack.empty())
		return fail(call, CUDA_ERROR_INVALID_CONTEXT,
		            "no context is current on this thread (tid " + std::to_string(thread_id()) +
		                "): a context is current only on the OS thread that made it current (cuCtxSetCurrent, "
		                "cuCtxPushCurrent, cuCtxCreate)");
	CUctx_st *ctx = ctx_stack.back();
	if (ctx->destroyed)
		return fail(call, CUDA_ERROR_INVALID_CONTEXT,
		            "the current context " + std::to_string(ctx->serial) + " of this thread was destroyed");
	*out = ctx;
	return CUDA_SUCCESS;
}

CUresult enter(const char *call, CUcontext *out) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(call, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(call, ctx);
	*out = ctx;
	return CUDA_SUCCESS;
}

static bool is_legacy(CUstream s) { return s == nullptr || s == CU_STREAM_LEGACY; }

// check_stream validates s for ctx; call with mu held.
static CUresult check_stream(const char *call, CUctx_st *ctx, CUstream s) {
	if (is_legacy(s))
		return CUDA_SUCCESS;
	if (s == CU_STREAM_PER_THREAD)
		return fail(call, CUDA_ERROR_NOT_SUPPORTED, "the per-thread default stream is not emulated by the fake");
	if (!known(s))
		return fail(call, CUDA_ERROR_INVALID_HANDLE, "not a stream handle (never created by cuStreamCreate)");
	if (s->destroyed)
		return fail(call, CUDA_ERROR_INVALID_HANDLE, "stream " + std::to_string(s->id) + " was destroyed");
	if (s->ctx != ctx)
		return fail(call, CUDA_ERROR_INVALID_CONTEXT,
		            "stream " + std::to_string(s->id) + " belongs to context " + std::to_string(s->ctx->serial) +
		                ", but this thread's current context is " + std::to_string(ctx->serial));
	return CUDA_SUCCESS;
}

CUresult stream_ok(const char *call, CUcontext ctx, CUstream s) {
	std::lock_guard<std::mutex> l(mu);
	return check_stream(call, ctx, s);
}

bool capturing(CUstream s) {
	std::lock_guard<std::mutex> l(mu);
	return !is_legacy(s) && known(s) && s->capture;
}

static std::string mode_name(CUstreamCaptureMode m) {
	switch (m) {
	case CU_STREAM_CAPTURE_MODE_GLOBAL:
		return "global";
	case CU_STREAM_CAPTURE_MODE_THREAD_LOCAL:
		return "thread-local";
	case CU_STREAM_CAPTURE_MODE_RELAXED:
		return "relaxed";
	}
	return "?";
}

static void invalidate(CUstream_st *s, const std::string &why) {
	if (s->capture->invalid.empty())
		s->capture->invalid = why;
}

// refuse_capturing fails call, which may not run on s while s captures, and
// invalidates that capture. Call with mu held.
static CUresult refuse_capturing(const char *call, CUstream_st *s, const std::string &why) {
	if (is_legacy(s) || !s->capture)
		return CUDA_SUCCESS;
	invalidate(s, std::string(call) + ": " + why);
	return fail(call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
	            why + " (stream " + std::to_string(s->id) + " is capturing; the capture is now invalidated)");
}

CUresult refuse_in_capture(const char *call, CUstream s, const std::string &why) {
	std::lock_guard<std::mutex> l(mu);
	if (!known(s))
		return CUDA_SUCCESS;
	return refuse_capturing(call, s, why);
}

// unsafe_in_capture fails call, a call that real drivers refuse while a
// capture is in progress (an allocation, a synchronous copy, a
// synchronization), when a capture it interferes with is in progress: a
// global-mode capture anywhere, or a thread-local one begun on this thread.
// It invalidates that capture, as real drivers do. Call with mu held.
static CUresult unsafe_in_capture(const char *call) {
	for (CUstream_st *s : capturing_streams) {
		Capture *c = s->capture;
		if (c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL ||
		    (c->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && c->thread == std::this_thread::get_id())) {
			invalidate(s, std::string(call) + " during the capture");
			return fail(call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
			            std::string(call) + " is not allowed while stream " + std::to_string(s->id) + " is capturing (" +
			                mode_name(c->mode) + " mode, begun on this thread); the capture is now invalidated");
		}
	}
	return CUDA_SUCCESS;
}

// A capture check and a sticky check for the synchronous calls of memory.cc.
CUresult enter_unsafe(const char *call, CUcontext *ctx);
CUresult enter_unsafe(const char *call, CUcontext *out) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(call, &ctx))
		return r;
	if (CUresult r = unsafe_in_capture(call))
		return r;
	if (ctx->sticky)
		return sticky_error(call, ctx);
	*out = ctx;
	return CUDA_SUCCESS;
}

// queued_use names work issued on a stream of ctx and not yet finished
// that touches [lo, hi), or returns "". Call with mu held.
std::string queued_use(CUctx_st *ctx, std::uint64_t lo, std::uint64_t hi) {
	for (CUstream_st *s : ctx->streams)
		for (const Item &it : s->queue)
			for (const Op &op : it.ops)
				for (const Access &a : op.access)
					if (a.ptr >= lo && a.ptr < hi)
						return op.what + " on stream " + std::to_string(s->id);
	return "";
}

// execute runs op as work of ctx at clock c on stream (0: the host or the
// legacy stream); called without mu.
static Fault execute(CUctx_st *ctx, const Op &op, int stream, const Clock &c) {
	{
		std::lock_guard<std::mutex> l(mu);
		for (const Access &a : op.access)
			if (Fault f = check_access(ctx, a, stream, c, op.what))
				return f;
	}
	if (Fault f = op.run())
		return f;
	std::lock_guard<std::mutex> l(mu);
	return check_guards(op.access, op.what);
}

static bool idle(const CUstream_st *s) { return s->done == s->issued; }

// host_join records that the host has seen work up to c complete, which
// releases the pinned sources of async copies it covers.
static void host_join(CUctx_st *ctx, const Clock &c) {
	join(ctx->host, c);
	release_pinned(ctx);
}

// wait_all waits until every stream of ctx is idle and joins what they did
// into the host's clock. Call with l holding mu.
static void wait_all(std::unique_lock<std::mutex> &l, CUctx_st *ctx) {
	changed.wait(l, [ctx] { return std::all_of(ctx->streams.begin(), ctx->streams.end(), idle); });
	for (CUstream_st *s : ctx->streams)
		join(ctx->host, s->clock);
	host_join(ctx, ctx->retired);
}

// run_on_host runs ops on the calling thread as legacy-stream work: after
// everything issued before on every stream, before everything after.
static CUresult run_on_host(const char *call, CUctx_st *ctx, const std::vector<Op> &ops) {
	std::unique_lock<std::mutex> l(mu);
	wait_all(l, ctx);
	if (ctx->sticky)
		return sticky_error(call, ctx);
	tick(ctx->host, 0);
	const Clock c = ctx->host;
	l.unlock();
	for (const Op &op : ops)
		if (Fault f = execute(ctx, op, 0, c)) {
			l.lock();
			set_sticky(ctx, f, op.what + " (legacy stream)");
			return fail(call, f.code, f.msg);
		}
	return CUDA_SUCCESS;
}

// push appends an item to s's queue; call with mu held.
static Item &push(CUstream_st *s) {
	join(s->clock, s->ctx->host); // after what the host has seen complete
	tick(s->clock, s->id);
	Item it;
	it.clock = s->clock;
	it.seq = ++s->issued;
	s->queue.push_back(std::move(it));
	changed.notify_all();
	return s->queue.back();
}

static CUstream_st *capturing_in(CUctx_st *ctx) {
	for (CUstream_st *s : capturing_streams)
		if (s->ctx == ctx)
			return s;
	return nullptr;
}

static CUresult submit_ops(const char *call, CUctx_st *ctx, CUstream s, std::vector<Op> ops, bool graph,
                           Issued *issued = nullptr) {
	std::unique_lock<std::mutex> l(mu);
	if (CUresult r = check_stream(call, ctx, s))
		return r;
	if (ctx->sticky)
		return sticky_error(call, ctx);
	if (is_legacy(s)) {
		// The legacy stream waits for every blocking stream, so it would
		// join a capture in progress: real drivers refuse that.
		if (CUstream_st *cs = capturing_in(ctx)) {
			invalidate(cs, std::string(call) + " on the legacy stream");
			return fail(call, CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
			            "work on the legacy stream while stream " + std::to_string(cs->id) +
			                " is capturing; the capture is now invalidated");
		}
		l.unlock();
		return run_on_host(call, ctx, ops);
	}
	if (Capture *c = s->capture) {
		if (graph)
			return fail(call, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
			            "launching a graph into a capture is not emulated by the fake");
		if (!c->invalid.empty())
			return fail(call, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
			            "stream " + std::to_string(s->id) + "'s capture was invalidated by " + c->invalid);
		for (Op &op : ops)
			c->nodes.push_back(std::move(op));
		return CUDA_SUCCESS;
	}
	Item &it = push(s);
	it.ops = std::move(ops);
	if (issued)
		*issued = Issued{s->id, it.clock[s->id]};
	return CUDA_SUCCESS;
}

CUresult submit(const char *call, CUcontext ctx, CUstream s, Op op, Issued *issued) {
	std::vector<Op> ops;
	ops.push_back(std::move(op));
	return submit_ops(call, ctx, s, std::move(ops), false, issued);
}

// worker runs s's queue: each item after its predecessors and the event it
// waits for, after a seeded random delay, so that work of two streams
// interleaves differently from what issue order suggests.
static void worker(CUstream_st *s) {
	std::uniform_int_distribution<unsigned> delay(0, settings().delay_us);
	std::unique_lock<std::mutex> l(mu);
	for (;;) {
		changed.wait(l, [s] {
			if (s->queue.empty())
				return s->destroyed;
			const Item &it = s->queue.front();
			return !it.wait || it.wait->reached >= it.event_seq;
		});
		if (s->queue.empty()) { // destroyed, and everything issued has run
			CUctx_st *ctx = s->ctx;
			join(ctx->retired, s->clock);
			ctx->streams.erase(std::remove(ctx->streams.begin(), ctx->streams.end(), s), ctx->streams.end());
			changed.notify_all();
			return;
		}
		Item &it = s->queue.front(); // a deque keeps references across push_back
		const unsigned us = delay(s->rng);
		CUctx_st *ctx = s->ctx;
		l.unlock();
		if (us)
			std::this_thread::sleep_for(std::chrono::microseconds(us));
		for (const Op &op : it.ops) {
			{
				std::lock_guard<std::mutex> g(mu);
				if (ctx->sticky || ctx->destroyed)
					break; // a dead context runs nothing more
			}
			if (Fault f = execute(ctx, op, s->id, it.clock)) {
				std::lock_guard<std::mutex> g(mu);
				set_sticky(ctx, f, op.what + " on stream " + std::to_string(s->id));
				break;
			}
		}
		l.lock();
		if (CUevent_st *e = it.record) {
			e->reached = std::max(e->reached, it.event_seq);
			e->time = std::chrono::steady_clock::now();
		}
		s->done++;
		s->queue.pop_front();
		changed.notify_all();
	}
}

} // namespace fake

using namespace fake;

extern "C" {

// ---- errors, initialization, the device

CUresult cuGetErrorName(CUresult error, const char **pStr) {
	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	*pStr = error_name(error);
	return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// cuGetErrorString gives the detailed message of the calling thread's last
// error when it has that code, so that an error built from it names the
// problem.
CUresult cuGetErrorString(CUresult error, const char **pStr) {
	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	const char *name = error_name(error);
	if (!name) {
		*pStr = nullptr;
		return CUDA_ERROR_INVALID_VALUE;
	}
	*pStr = (error == last_code && error != CUDA_SUCCESS) ? last_msg.c_str() : name;
	return CUDA_SUCCESS;
}

CUresult cuInit(unsigned int flags) {
	if (flags != 0)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "flags must be 0, got " + std::to_string(flags));
	settings(); // a bad environment variable stops the program here
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v) {
	if (!v)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	*v = settings().driver_version;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) {
	if (!n)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	*n = 1;
	return CUDA_SUCCESS;
}

static CUresult check_device(const char *call, CUdevice d) {
	if (d != 0)
		return fail(call, CUDA_ERROR_INVALID_DEVICE,
		            "device " + std::to_string(d) + ": the fake has one device, 0");
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal) {
	if (!d)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (CUresult r = check_device(__func__, ordinal))
		return r;
	*d = 0;
	return CUDA_SUCCESS;
}

static const char device_name[] = "batchlab fake CUDA device (fakecuda)";

CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	if (!name || len <= 0)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null or empty name buffer");
	if (CUresult r = check_device(__func__, d))
		return r;
	std::snprintf(name, len, "%s", device_name);
	return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice d) {
	if (!bytes)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (CUresult r = check_device(__func__, d))
		return r;
	*bytes = settings().memory;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice d) {
	if (!uuid)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (CUresult r = check_device(__func__, d))
		return r;
	std::memcpy(uuid->bytes, "fakecuda-device0", 16);
	return CUDA_SUCCESS;
}

// The device: compute capability 9.0 with 2 multiprocessors of 512
// threads, so that the CUDA device's grid cap (SMs·threads/256 = 4 blocks)
// is small and every grid-stride loop goes round.
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice d) {
	if (!v)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (CUresult r = check_device(__func__, d))
		return r;
	switch (attr) {
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 2; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: *v = 512; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: *v = 64; break;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: *v = 2147483647; break;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: *v = 65535; break;
	case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: *v = 65535; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = 48 << 10; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *v = 228 << 10; break;
	case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: *v = 64 << 10; break;
	case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
	case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: *v = 65536; break;
	case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: *v = 65536; break;
	case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = 1000000; break;
	case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *v = 1000000; break;
	case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 4 << 20; break;
	case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: *v = 32; break;
	case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: *v = 2; break;
	case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: *v = 1; break;
	case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: *v = 1; break;
	case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_INTEGRATED: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_TCC_DRIVER: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: *v = CU_COMPUTEMODE_DEFAULT; break;
	case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: *v = 0; break;
	default:
		return FAIL(CUDA_ERROR_INVALID_VALUE,
		            "device attribute " + std::to_string((int)attr) + " is not answered by the fake");
	}
	return CUDA_SUCCESS;
}

// ---- contexts

CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice d) {
	if (!pctx)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (CUresult r = check_device(__func__, d))
		return r;
	if (flags & ~(unsigned)(CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST | CU_CTX_LMEM_RESIZE_TO_MAX))
		return FAIL(CUDA_ERROR_INVALID_VALUE, "unknown context flags " + std::to_string(flags));
	std::lock_guard<std::mutex> l(mu);
	install_fault_handler();
	CUctx_st *ctx = new CUctx_st;
	ctx->serial = next_ctx++;
	remember(ctx);
	ctx_stack.push_back(ctx);
	*pctx = ctx;
	return CUDA_SUCCESS;
}

static CUresult check_ctx_handle(const char *call, CUcontext ctx) {
	if (!known(ctx))
		return fail(call, CUDA_ERROR_INVALID_CONTEXT, "not a context handle");
	if (ctx->destroyed)
		return fail(call, CUDA_ERROR_INVALID_CONTEXT, "context " + std::to_string(ctx->serial) + " was destroyed");
	return CUDA_SUCCESS;
}

// cuCtxDestroy_v2 may be called from any thread, as on real drivers; the
// context stays current on other threads, where every later call fails.
CUresult cuCtxDestroy_v2(CUcontext ctx) {
	std::unique_lock<std::mutex> l(mu);
	if (CUresult r = check_ctx_handle(__func__, ctx))
		return r;
	if (capturing_in(ctx))
		return FAIL(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "destroying a context with a capture in progress");
	wait_all(l, ctx); // let workers finish: their items refer to the context
	ctx->destroyed = true;
	for (CUstream_st *s : ctx->streams)
		s->destroyed = true;
	ctx->streams.clear();
	changed.notify_all();
	ctx_stack.erase(std::remove(ctx_stack.begin(), ctx_stack.end(), ctx), ctx_stack.end());
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
	std::lock_guard<std::mutex> l(mu);
	if (CUresult r = check_ctx_handle(__func__, ctx))
		return r;
	ctx_stack.push_back(ctx);
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
	std::lock_guard<std::mutex> l(mu);
	if (ctx_stack.empty())
		return FAIL(CUDA_ERROR_INVALID_CONTEXT, "no context is current on this thread: nothing to pop");
	if (pctx)
		*pctx = ctx_stack.back();
	ctx_stack.pop_back();
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
	std::lock_guard<std::mutex> l(mu);
	if (!ctx) {
		if (!ctx_stack.empty())
			ctx_stack.pop_back();
		return CUDA_SUCCESS;
	}
	if (CUresult r = check_ctx_handle(__func__, ctx))
		return r;
	if (ctx_stack.empty())
		ctx_stack.push_back(ctx);
	else
		ctx_stack.back() = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx) {
	if (!pctx)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	*pctx = ctx_stack.empty() ? nullptr : ctx_stack.back();
	return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *d) {
	if (!d)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	*d = 0;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *v) {
	if (!v)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	if (ctx && check_ctx_handle(__func__, ctx))
		return CUDA_ERROR_INVALID_CONTEXT;
	*v = 3020;
	return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(__func__, &ctx))
		return r;
	if (CUresult r = unsafe_in_capture(__func__))
		return r;
	wait_all(l, ctx);
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	return CUDA_SUCCESS;
}

// ---- streams

static CUresult make_stream(const char *call, CUstream *ps, unsigned flags) {
	if (!ps)
		return fail(call, CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (flags & ~(unsigned)CU_STREAM_NON_BLOCKING)
		return fail(call, CUDA_ERROR_INVALID_VALUE, "unknown stream flags " + std::to_string(flags));
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(call, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(call, ctx);
	CUstream_st *s = new CUstream_st;
	s->ctx = ctx;
	s->id = ctx->next_stream++;
	s->flags = flags;
	s->rng.seed(settings().seed * 1000003u + ctx->serial * 1009u + s->id);
	remember(s);
	ctx->streams.push_back(s);
	std::thread(worker, s).detach();
	*ps = s;
	return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *ps, unsigned int flags) { return make_stream(__func__, ps, flags); }

CUresult cuStreamCreateWithPriority(CUstream *ps, unsigned int flags, int priority) {
	if (priority != 0)
		return FAIL(CUDA_ERROR_NOT_SUPPORTED, "stream priorities are not emulated by the fake (priority " +
		                                          std::to_string(priority) + ")");
	return make_stream(__func__, ps, flags);
}

static CUresult enter_stream(const char *call, CUstream s, CUctx_st **pctx) {
	CUctx_st *ctx;
	if (CUresult r = current(call, &ctx))
		return r;
	if (CUresult r = check_stream(call, ctx, s))
		return r;
	*pctx = ctx;
	return CUDA_SUCCESS;
}

// cuStreamDestroy_v2 returns at once; the worker runs what was issued, then
// ends, as real drivers release a stream once its work is done.
CUresult cuStreamDestroy_v2(CUstream s) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (is_legacy(s))
		return FAIL(CUDA_ERROR_INVALID_HANDLE, "the legacy stream cannot be destroyed");
	if (s->capture)
		return FAIL(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
		            "stream " + std::to_string(s->id) + " is capturing: end the capture first");
	s->destroyed = true; // its worker drains the queue, then retires it
	changed.notify_all();
	return ctx->sticky ? sticky_error(__func__, ctx) : CUDA_SUCCESS;
}

CUresult cuStreamGetFlags(CUstream s, unsigned int *flags) {
	if (!flags)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	*flags = is_legacy(s) ? 0 : s->flags;
	return CUDA_SUCCESS;
}

// sync_stream waits for what s has been issued so far; call with l holding mu.
static void sync_stream(std::unique_lock<std::mutex> &l, CUctx_st *ctx, CUstream s) {
	if (is_legacy(s)) {
		wait_all(l, ctx);
		return;
	}
	const std::uint64_t target = s->issued;
	const Clock c = s->clock;
	changed.wait(l, [s, target] { return s->done >= target; });
	host_join(ctx, c);
}

CUresult cuStreamSynchronize(CUstream s) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (CUresult r = refuse_capturing(__func__, s, "synchronizing with the capturing stream"))
		return r;
	if (CUresult r = unsafe_in_capture(__func__))
		return r;
	sync_stream(l, ctx, s);
	return ctx->sticky ? sticky_error(__func__, ctx) : CUDA_SUCCESS;
}

CUresult cuStreamQuery(CUstream s) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (CUresult r = refuse_capturing(__func__, s, "querying the capturing stream"))
		return r;
	if (CUresult r = unsafe_in_capture(__func__))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	bool done = is_legacy(s) ? std::all_of(ctx->streams.begin(), ctx->streams.end(), idle) : idle(s);
	if (!done)
		return CUDA_ERROR_NOT_READY; // not an error: no message
	if (is_legacy(s))
		for (CUstream_st *o : ctx->streams)
			host_join(ctx, o->clock);
	else
		host_join(ctx, s->clock);
	return CUDA_SUCCESS;
}

CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	if (!known(e) || e->destroyed)
		return FAIL(CUDA_ERROR_INVALID_HANDLE, "not a live event");
	if (e->ctx != ctx)
		return FAIL(CUDA_ERROR_INVALID_CONTEXT, "the event belongs to another context");
	if (flags != 0)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "flags must be 0");
	if (CUresult r = refuse_capturing(__func__, s, "waiting for an event inside a capture is not emulated by the fake"))
		return r;
	if (e->recorded == 0)
		return CUDA_SUCCESS; // an event never recorded has happened
	if (is_legacy(s)) {
		const std::uint64_t target = e->recorded;
		changed.wait(l, [e, target] { return e->reached >= target; });
		host_join(ctx, e->clock);
		return CUDA_SUCCESS;
	}
	join(s->clock, e->clock); // what follows on s is ordered after the record
	Item &it = push(s);
	it.wait = e;
	it.event_seq = e->recorded;
	return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode mode) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	if (is_legacy(s))
		return FAIL(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "the legacy stream cannot be captured");
	if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
	    mode != CU_STREAM_CAPTURE_MODE_RELAXED)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "unknown capture mode " + std::to_string((int)mode));
	if (s->capture)
		return FAIL(CUDA_ERROR_ILLEGAL_STATE, "stream " + std::to_string(s->id) + " is capturing already");
	s->capture = new Capture{mode, std::this_thread::get_id(), {}, {}};
	capturing_streams.push_back(s);
	return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream s, CUgraph *pg) {
	if (!pg)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (is_legacy(s) || !s->capture)
		return FAIL(CUDA_ERROR_ILLEGAL_STATE, "the stream is not capturing");
	Capture *c = s->capture;
	if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && c->thread != std::this_thread::get_id())
		return FAIL(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD,
		            "the capture was begun on another thread (" + mode_name(c->mode) + " mode)");
	s->capture = nullptr;
	capturing_streams.erase(std::remove(capturing_streams.begin(), capturing_streams.end(), s),
	                        capturing_streams.end());
	std::unique_ptr<Capture> done(c);
	*pg = nullptr;
	if (!c->invalid.empty())
		return FAIL(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "the capture was invalidated by " + c->invalid);
	CUgraph_st *g = new CUgraph_st{ctx, std::move(c->nodes)};
	remember(g);
	*pg = g;
	return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status) {
	if (!status)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_stream(__func__, s, &ctx))
		return r;
	if (is_legacy(s)) {
		if (CUstream_st *cs = capturing_in(ctx)) {
			invalidate(cs, "cuStreamIsCapturing on the legacy stream");
			return FAIL(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "asked of the legacy stream while a capture is in progress");
		}
		*status = CU_STREAM_CAPTURE_STATUS_NONE;
		return CUDA_SUCCESS;
	}
	if (!s->capture)
		*status = CU_STREAM_CAPTURE_STATUS_NONE;
	else
		*status = s->capture->invalid.empty() ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_INVALIDATED;
	return CUDA_SUCCESS;
}

// ---- events

CUresult cuEventCreate(CUevent *pe, unsigned int flags) {
	if (!pe)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	if (flags & ~(unsigned)(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING))
		return FAIL(CUDA_ERROR_INVALID_VALUE, "unknown or unsupported event flags " + std::to_string(flags));
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(__func__, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	CUevent_st *e = new CUevent_st{ctx, flags};
	remember(e);
	*pe = e;
	return CUDA_SUCCESS;
}

static CUresult enter_event(const char *call, CUevent e, CUctx_st **pctx) {
	CUctx_st *ctx;
	if (CUresult r = current(call, &ctx))
		return r;
	if (!known(e))
		return fail(call, CUDA_ERROR_INVALID_HANDLE, "not an event handle");
	if (e->destroyed)
		return fail(call, CUDA_ERROR_INVALID_HANDLE, "the event was destroyed");
	if (e->ctx != ctx)
		return fail(call, CUDA_ERROR_INVALID_CONTEXT,
		            "the event belongs to context " + std::to_string(e->ctx->serial) +
		                ", but this thread's current context is " + std::to_string(ctx->serial));
	*pctx = ctx;
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_event(__func__, e, &ctx))
		return r;
	e->destroyed = true; // waits already issued on it still complete
	return ctx->sticky ? sticky_error(__func__, ctx) : CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_event(__func__, e, &ctx))
		return r;
	if (CUresult r = check_stream(__func__, ctx, s))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	if (is_legacy(s)) {
		if (CUstream_st *cs = capturing_in(ctx)) {
			invalidate(cs, "cuEventRecord on the legacy stream");
			return FAIL(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "legacy-stream record while a capture is in progress");
		}
		wait_all(l, ctx);
		tick(ctx->host, 0);
		e->clock = ctx->host;
		e->reached = e->recorded = e->recorded + 1;
		e->time = std::chrono::steady_clock::now();
		return CUDA_SUCCESS;
	}
	if (CUresult r = refuse_capturing(__func__, s, "recording an event inside a capture is not emulated by the fake"))
		return r;
	Item &it = push(s);
	it.record = e;
	it.event_seq = ++e->recorded;
	e->clock = it.clock;
	return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent e) {
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_event(__func__, e, &ctx))
		return r;
	if (CUresult r = unsafe_in_capture(__func__))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	if (e->reached < e->recorded)
		return CUDA_ERROR_NOT_READY;
	host_join(ctx, e->clock);
	return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent e) {
	std::unique_lock<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_event(__func__, e, &ctx))
		return r;
	if (CUresult r = unsafe_in_capture(__func__))
		return r;
	const std::uint64_t target = e->recorded;
	changed.wait(l, [e, target] { return e->reached >= target; });
	host_join(ctx, e->clock);
	return ctx->sticky ? sticky_error(__func__, ctx) : CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end) {
	if (!ms)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = enter_event(__func__, start, &ctx))
		return r;
	if (CUresult r = enter_event(__func__, end, &ctx))
		return r;
	if (ctx->sticky)
		return sticky_error(__func__, ctx);
	if ((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING)
		return FAIL(CUDA_ERROR_INVALID_HANDLE, "an event made with CU_EVENT_DISABLE_TIMING has no time");
	if (start->recorded == 0 || end->recorded == 0)
		return FAIL(CUDA_ERROR_INVALID_HANDLE, "an event was never recorded");
	if (start->reached < start->recorded || end->reached < end->recorded)
		return CUDA_ERROR_NOT_READY;
	*ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
	return CUDA_SUCCESS;
}

// ---- graphs

CUresult cuGraphInstantiateWithFlags(CUgraphExec *pe, CUgraph g, unsigned long long flags) {
	if (!pe)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "null pointer");
	std::lock_guard<std::mutex> l(mu);
	CUctx_st *ctx;
	if (CUresult r = current(__func__, &ctx))
		return r;
	if (!known(g) || g->destroyed)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "not a live graph");
	if (g->ctx != ctx)
		return FAIL(CUDA_ERROR_INVALID_CONTEXT, "the graph belongs to another context");
	if (flags != 0)
		return FAIL(CUDA_ERROR_NOT_SUPPORTED, "instantiate flags are not emulated by the fake");
	CUgraphExec_st *e = new CUgraphExec_st{ctx, g->nodes};
	remember(e);
	*pe = e;
	return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
	CUctx_st *ctx;
	std::vector<Op> nodes;
	{
		std::lock_guard<std::mutex> l(mu);
		if (CUresult r = current(__func__, &ctx))
			return r;
		if (!known(e) || e->destroyed)
			return FAIL(CUDA_ERROR_INVALID_HANDLE, "not a live executable graph");
		if (e->ctx != ctx)
			return FAIL(CUDA_ERROR_INVALID_CONTEXT, "the graph belongs to another context");
		nodes = e->nodes;
	}
	return submit_ops(__func__, ctx, s, std::move(nodes), true);
}

CUresult cuGraphExecDestroy(CUgraphExec e) {
	std::lock_guard<std::mutex> l(mu);
	if (!known(e) || e->destroyed)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "not a live executable graph");
	e->destroyed = true; // queued launches hold their own copy of the nodes
	e->nodes.clear();
	return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g) {
	std::lock_guard<std::mutex> l(mu);
	if (!known(g) || g->destroyed)
		return FAIL(CUDA_ERROR_INVALID_VALUE, "not a live graph");
	g->destroyed = true;
	g->nodes.clear();
	return CUDA_SUCCESS;
}

// fakecuda_not_supported is what every driver call the fake does not
// implement returns (stubs.cc, generated).
CUresult fakecuda_not_supported(const char *call) {
	return fail(call, CUDA_ERROR_NOT_SUPPORTED, "not implemented by the fake driver");
}

} // extern "C"
