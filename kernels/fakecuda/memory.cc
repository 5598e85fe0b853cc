// memory.cc: device memory (an arena with guard zones), pinned host
// memory, copies and memsets.
//
// The arena is one reservation of address space, never reused: each
// allocation gets pages of its own, starts 256-byte aligned and ends as
// close to the end of its last page as that allows, and a PROT_NONE guard
// page follows it. The slack around the allocation inside its pages holds a
// canary, checked after every piece of work that touched the allocation; a
// freed allocation's pages become PROT_NONE again and its addresses are
// never handed out twice, so a late use of it faults or is reported by
// name instead of reading someone else's data.
#include "driver.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fake {

CUresult enter_unsafe(const char *call, CUcontext *ctx); // driver.cc

namespace {

constexpr std::uint64_t page = 4096;
constexpr std::uint64_t arena_size = 1ull << 40; // address space only (PROT_NONE, MAP_NORESERVE)
constexpr unsigned char canary = 0xCD;
constexpr unsigned char fresh = 0xFF; // new memory reads as NaN, as nothing initialized it

// Use records one piece of work's access to an allocation, for the race check.
struct Use {
	int stream;
	std::uint64_t clock;
	std::string what;
};

struct Alloc {
	std::uint64_t base, start, size, end_of_pages; // base..end_of_pages are its pages; a guard page follows
	CUctx_st *ctx;
	std::uint64_t serial;
	bool live = true;
	bool has_write = false;
	Use write;              // the last write
	std::vector<Use> reads; // reads since, one per stream
};

std::uint64_t arena_base, arena_next;
std::map<std::uint64_t, Alloc *> &allocs = *new std::map<std::uint64_t, Alloc *>; // by base
std::map<std::uintptr_t, std::size_t> &pinned = *new std::map<std::uintptr_t, std::size_t>;
std::uint64_t used, next_serial = 1;

// Held is a pinned range made read-only while an async copy reads it.
struct Held {
	CUctx_st *ctx;
	std::uintptr_t lo, hi; // whole pages
	int stream;
	std::uint64_t pos;
	std::string what;
};
std::vector<Held> &held = *new std::vector<Held>;

std::string hex(std::uint64_t p) {
	char b[32];
	std::snprintf(b, sizeof b, "0x%" PRIx64, p);
	return b;
}

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

bool reserve() {
	if (arena_base)
		return true;
	void *p = mmap(nullptr, arena_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	arena_base = arena_next = (std::uint64_t)p;
	return true;
}

// find returns the allocation whose pages or guard page hold p, or nullptr.
Alloc *find(std::uint64_t p) {
	auto it = allocs.upper_bound(p);
	if (it == allocs.begin())
		return nullptr;
	Alloc *a = std::prev(it)->second;
	return p < a->end_of_pages + page ? a : nullptr;
}

std::string name(const Alloc *a) {
	return "allocation #" + std::to_string(a->serial) + " (" + std::to_string(a->size) + " bytes at " +
	       hex(a->start) + ")";
}

const void *pinned_containing(const void *p, std::size_t *size) {
	auto it = pinned.upper_bound((std::uintptr_t)p);
	if (it == pinned.begin())
		return nullptr;
	--it;
	if ((std::uintptr_t)p >= it->first + it->second)
		return nullptr;
	*size = it->second;
	return (const void *)it->first;
}

bool guards_ok(const Alloc *a, std::uint64_t *bad) {
	for (std::uint64_t p = a->base; p < a->start; p++)
		if (*(const unsigned char *)p != canary)
			return *bad = p, false;
	for (std::uint64_t p = a->start + a->size; p < a->end_of_pages; p++)
		if (*(const unsigned char *)p != canary)
			return *bad = p, false;
	return true;
}

// race reports whether the earlier use u is unordered with work on stream
// at clock c.
bool unordered(const Use &u, int stream, const Clock &c) { return u.stream != stream && at(c, u.stream) < u.clock; }

std::string where(int stream) { return stream ? "stream " + std::to_string(stream) : "the host/legacy stream"; }

// The SIGSEGV handler: a kernel (or a copy) that runs into a guard page or
// a freed allocation cannot be given an error mid-way, so it is named and
// the process aborts. Faults outside the arena go to the handler that was
// there before (Go's, in a Go program).
struct sigaction previous;
std::atomic<const char *> running{nullptr};

void on_segv(int sig, siginfo_t *info, void *uctx) {
	const std::uint64_t p = (std::uint64_t)info->si_addr;
	if (arena_base && p >= arena_base && p < arena_base + arena_size) {
		// No lock: the process is about to end, and the faulting thread
		// may hold mu.
		std::string what = describe(p);
		const char *k = running.load();
		std::fprintf(stderr,
		             "fakecuda: %s: CUDA_ERROR_ILLEGAL_ADDRESS: access to %s, %s; a fault inside device work "
		             "cannot be returned as an error, so the fake aborts\n",
		             k ? k : "device work", hex(p).c_str(), what.c_str());
		std::abort();
	}
	for (const Held &h : held)
		if (p >= h.lo && p < h.hi) {
			std::fprintf(stderr,
			             "fakecuda: write to pinned memory at %s: CUDA_ERROR_ILLEGAL_STATE: it is the source of %s on "
			             "stream %d, and the host has not synchronized with that copy (an async copy reads pinned "
			             "memory when it runs: wait for its event or stream before reusing the buffer); the fake "
			             "aborts\n",
			             hex(p).c_str(), h.what.c_str(), h.stream);
			std::abort();
		}
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, info, uctx);
		return;
	}
	if (previous.sa_handler == SIG_IGN)
		return;
	if (previous.sa_handler == SIG_DFL) {
		signal(sig, SIG_DFL); // the fault repeats on return, now fatal
		return;
	}
	previous.sa_handler(sig);
}

} // namespace

void set_running_kernel(const char *name) { running.store(name); }

// install_fault_handler runs at the first cuCtxCreate, after Go's runtime
// has installed its handlers, so that ours chains to Go's.
void install_fault_handler() {
	static bool done;
	if (done)
		return;
	done = true;
	struct sigaction sa {};
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART; // SA_ONSTACK: Go requires it of every handler
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &previous);
}

bool in_arena(std::uint64_t p) { return arena_base && p >= arena_base && p < arena_base + arena_size; }

std::string describe(std::uint64_t p) {
	if (!in_arena(p)) {
		std::size_t n;
		if (const void *h = pinned_containing((const void *)p, &n))
			return "a pinned host pointer (inside the " + std::to_string(n) + "-byte cuMemHostAlloc block at " +
			       hex((std::uint64_t)h) + "), not a device address";
		return "not a device address (a host pointer or garbage)";
	}
	Alloc *a = find(p);
	if (!a)
		return "an arena address outside every allocation";
	std::string state = a->live ? "" : "freed ";
	if (p >= a->start && p < a->start + a->size)
		return "inside " + state + name(a) + " at offset " + std::to_string(p - a->start);
	if (p < a->start)
		return std::to_string(a->start - p) + " bytes before the start of " + state + name(a);
	return std::to_string(p - (a->start + a->size)) + " bytes past the end of " + state + name(a);
}

bool is_pinned(const void *p, std::size_t n) {
	std::size_t size;
	const void *h = pinned_containing(p, &size);
	return h && (std::uintptr_t)p + n <= (std::uintptr_t)h + size;
}

void protect_pinned(CUctx_st *ctx, const void *p, std::size_t n, int stream, std::uint64_t pos, const std::string &what) {
	const std::uintptr_t lo = round_up((std::uintptr_t)p, page), hi = ((std::uintptr_t)p + n) / page * page;
	if (lo >= hi)
		return; // no whole page: the copy's checksum still sees a change
	held.push_back(Held{ctx, lo, hi, stream, pos, what});
	mprotect((void *)lo, hi - lo, PROT_READ);
}

void release_pinned(CUctx_st *ctx) {
	std::vector<Held> done;
	std::erase_if(held, [&](const Held &h) {
		bool covered = h.ctx == ctx && at(ctx->host, h.stream) >= h.pos;
		if (covered)
			done.push_back(h);
		return covered;
	});
	for (const Held &d : done) {
		mprotect((void *)d.lo, d.hi - d.lo, PROT_READ | PROT_WRITE);
		for (const Held &h : held) // pages another pending copy still reads
			if (h.lo < d.hi && d.lo < h.hi)
				mprotect((void *)std::max(h.lo, d.lo), std::min(h.hi, d.hi) - std::max(h.lo, d.lo), PROT_READ);
	}
}

Fault check_access(CUctx_st *ctx, const Access &acc, int stream, const Clock &c, const std::string &work) {
	auto bad = [&](const std::string &why) {
		return Fault{CUDA_ERROR_ILLEGAL_ADDRESS, work + ": " + acc.what + " " + hex(acc.ptr) +
		                                             (acc.n ? " (" + std::to_string(acc.n) + " bytes)" : "") + " is " +
		                                             why};
	};
	Alloc *a = in_arena(acc.ptr) ? find(acc.ptr) : nullptr;
	if (!a || acc.ptr < a->start || acc.ptr >= a->start + a->size)
		return bad(describe(acc.ptr));
	if (!a->live)
		return bad("inside " + name(a) + ", which was freed (cuMemFree) before this work ran");
	if (a->ctx != ctx)
		return bad("inside " + name(a) + " of context " + std::to_string(a->ctx->serial) +
		           ", not of the work's context " + std::to_string(ctx->serial));
	if (acc.n && acc.ptr + acc.n > a->start + a->size)
		return bad("inside " + name(a) + " but runs " + std::to_string(acc.ptr + acc.n - (a->start + a->size)) +
		           " bytes past its end");
	// The race check: an access must be ordered (stream order, an event
	// wait, a host synchronization) after every earlier write, and a write
	// after every earlier read, of the same allocation on other streams.
	const std::string self = work + " on " + where(stream);
	auto race = [&](const Use &u, const char *kind) {
		return Fault{CUDA_ERROR_ILLEGAL_STATE,
		             "race on " + name(a) + ": " + self + " (" + acc.what + ") is not ordered after the " + kind +
		                 " by " + u.what + " on " + where(u.stream) +
		                 ": a cuStreamWaitEvent or a synchronization between them is missing"};
	};
	if (a->has_write && unordered(a->write, stream, c))
		return race(a->write, "write");
	if (acc.write) {
		for (const Use &u : a->reads)
			if (unordered(u, stream, c))
				return race(u, "read");
		a->has_write = true;
		a->write = Use{stream, at(c, stream), work};
		a->reads.clear();
	} else {
		Use u{stream, at(c, stream), work};
		bool found = false;
		for (Use &r : a->reads)
			if (r.stream == stream)
				r = u, found = true;
		if (!found)
			a->reads.push_back(u);
	}
	return {};
}

Fault check_guards(const std::vector<Access> &access, const std::string &work) {
	for (const Access &acc : access) {
		Alloc *a = find(acc.ptr);
		std::uint64_t bad;
		if (a && a->live && !guards_ok(a, &bad))
			return Fault{CUDA_ERROR_ILLEGAL_ADDRESS, work + " wrote to " + hex(bad) + ", " + describe(bad) +
			                                             " (its guard zone; found after the work ran)"};
	}
	return {};
}

} // namespace fake

using namespace fake;

// range is an Access over [p, p+n) of device memory.
static Access range(CUdeviceptr p, std::size_t n, bool write, const char *what) {
	return Access{(std::uint64_t)p, n, write, what};
}

static std::string bytes(std::size_t n) { return std::to_string(n) + " bytes"; }

extern "C" {

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t size) {
	if (!dptr)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter_unsafe(__func__, &ctx))
		return r;
	if (size == 0)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "0 bytes asked");
	std::lock_guard<std::mutex> l(mu);
	const std::uint64_t pages = round_up(round_up(size, 256), page); // accounted by pages, as drivers do by their granule
	if (used + pages > settings().memory)
		return fail(__func__, CUDA_ERROR_OUT_OF_MEMORY,
		            bytes(size) + " asked, " + bytes(settings().memory - used) + " of " + bytes(settings().memory) +
		                " free (FAKECUDA_MEMORY)");
	if (!reserve())
		return fail(__func__, CUDA_ERROR_OUT_OF_MEMORY, "could not reserve the fake's arena");
	if (arena_next + pages + page > arena_base + arena_size)
		return fail(__func__, CUDA_ERROR_OUT_OF_MEMORY, "the fake's arena address space (1 TiB, never reused) is used up");
	Alloc *a = new Alloc;
	a->base = arena_next;
	a->end_of_pages = a->base + pages;
	a->start = a->end_of_pages - round_up(size, 256);
	a->size = size;
	a->ctx = ctx;
	a->serial = next_serial++;
	if (mprotect((void *)a->base, pages, PROT_READ | PROT_WRITE) != 0) {
		delete a;
		return fail(__func__, CUDA_ERROR_OUT_OF_MEMORY, "mprotect of the arena failed");
	}
	arena_next += pages + page; // the guard page stays PROT_NONE
	std::memset((void *)a->base, canary, a->start - a->base);
	std::memset((void *)a->start, fresh, size);
	std::memset((void *)(a->start + size), canary, a->end_of_pages - (a->start + size));
	allocs[a->base] = a;
	used += pages;
	*dptr = a->start;
	return CUDA_SUCCESS;
}

// cuMemFree_v2 frees at once. Real drivers happen to wait for the device
// here; the fake does not, so work still queued that uses the allocation
// fails (ILLEGAL_ADDRESS, naming it) instead of depending on that.
CUresult cuMemFree_v2(CUdeviceptr p) {
	CUcontext ctx;
	if (CUresult r = enter_unsafe(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	Alloc *a = in_arena(p) ? find(p) : nullptr;
	if (!a || p != a->start)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, hex(p) + " is not an allocation's start: " + describe(p));
	if (!a->live)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, hex(p) + ": " + name(a) + " was freed already");
	if (a->ctx != ctx)
		return fail(__func__, CUDA_ERROR_INVALID_CONTEXT,
		            name(a) + " belongs to context " + std::to_string(a->ctx->serial) +
		                ", not to this thread's current context " + std::to_string(ctx->serial));
	std::uint64_t bad;
	if (!guards_ok(a, &bad))
		return fail(__func__, CUDA_ERROR_ILLEGAL_ADDRESS, "the guard zone of " + name(a) + " was overwritten at " + hex(bad));
	// Real drivers happen to wait for the device in cuMemFree; the fake
	// requires the host to have synchronized with every use (stream order
	// alone does not free memory safely on a stream-ordered allocator).
	std::string use = queued_use(ctx, a->start, a->start + a->size);
	if (use.empty() && a->has_write && unordered(a->write, 0, ctx->host))
		use = a->write.what + " on " + where(a->write.stream);
	for (const Use &u : a->reads)
		if (use.empty() && unordered(u, 0, ctx->host))
			use = u.what + " on " + where(u.stream);
	a->live = false;
	madvise((void *)a->base, a->end_of_pages - a->base, MADV_DONTNEED);
	mprotect((void *)a->base, a->end_of_pages - a->base, PROT_NONE);
	used -= a->end_of_pages - a->base;
	if (!use.empty())
		return fail(__func__, CUDA_ERROR_ILLEGAL_STATE,
		            name(a) + " was freed while " + use +
		                " uses it and the host has not synchronized with that work (cuStreamSynchronize, "
		                "cuEventSynchronize, cuCtxSynchronize): the work now fails if it runs; real drivers happen to "
		                "wait here, the fake does not");
	return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
	if (!free || !total)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	*total = settings().memory;
	*free = settings().memory - used;
	return CUDA_SUCCESS;
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr p) {
	CUcontext ctx;
	if (CUresult r = enter(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	Alloc *a = in_arena(p) ? find(p) : nullptr;
	if (!a || !a->live || p < a->start || p >= a->start + a->size)
		return fail(__func__, CUDA_ERROR_NOT_FOUND, hex(p) + " is " + describe(p));
	if (pbase)
		*pbase = a->start;
	if (psize)
		*psize = a->size;
	return CUDA_SUCCESS;
}

// Pinned host memory: ordinary pages the fake records, so that async copies
// know their source is read when they run (not staged at the call).
CUresult cuMemHostAlloc(void **pp, size_t size, unsigned int flags) {
	if (!pp)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "null pointer");
	CUcontext ctx;
	if (CUresult r = enter_unsafe(__func__, &ctx))
		return r;
	if (size == 0)
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, "0 bytes asked");
	if (flags & ~(unsigned)CU_MEMHOSTALLOC_PORTABLE)
		return fail(__func__, CUDA_ERROR_NOT_SUPPORTED,
		            "cuMemHostAlloc flags " + std::to_string(flags) + ": only CU_MEMHOSTALLOC_PORTABLE is emulated");
	void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fail(__func__, CUDA_ERROR_OUT_OF_MEMORY, "mmap of " + bytes(size) + " failed");
	std::lock_guard<std::mutex> l(mu);
	pinned[(std::uintptr_t)p] = size;
	*pp = p;
	return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *p) {
	CUcontext ctx;
	if (CUresult r = enter_unsafe(__func__, &ctx))
		return r;
	std::lock_guard<std::mutex> l(mu);
	auto it = pinned.find((std::uintptr_t)p);
	if (it == pinned.end())
		return fail(__func__, CUDA_ERROR_INVALID_VALUE, hex((std::uint64_t)p) + " is not a block from cuMemHostAlloc");
	const std::uintptr_t lo = it->first, hi = it->first + it->second;
	std::erase_if(held, [&](const Held &h) { return h.lo >= lo && h.hi <= hi; });
	munmap(p, it->second);
	pinned.erase(it);
	return CUDA_SUCCESS;
}

} // extern "C"

// hash is FNV-1a over n bytes, 8 at a time: enough to tell whether a pinned
// source changed between an async copy's issue and its run.
static std::uint64_t hash(const void *p, std::size_t n) {
	const unsigned char *b = (const unsigned char *)p;
	std::uint64_t h = 1469598103934665603ull, w;
	std::size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		std::memcpy(&w, b + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

// host_side checks a copy's host pointer: it must not be a device address.
static CUresult host_side(const char *call, const void *p, std::size_t n) {
	if (!p && n)
		return fail(call, CUDA_ERROR_INVALID_VALUE, "null host pointer");
	std::lock_guard<std::mutex> l(mu);
	if (in_arena((std::uint64_t)p))
		return fail(call, CUDA_ERROR_INVALID_VALUE,
		            "the host pointer " + hex((std::uint64_t)p) + " is a device address: " + describe((std::uint64_t)p));
	return CUDA_SUCCESS;
}

static Fault copy(void *dst, const void *src, std::size_t n) {
	std::memcpy(dst, src, n);
	return {};
}

// htod makes the op of a host→device copy. From pinned memory outside a
// capture it reads the source when it runs, and reports a source the host
// changed after the call; in a capture it reads it at each replay (that is
// what a graph does); from pageable memory it copies the source at the call,
// as real drivers stage it.
static Op htod(const char *call, CUdeviceptr dst, const void *src, std::size_t n, bool async, bool in_capture) {
	Op op{std::string(call) + " of " + bytes(n), {range(dst, n, true, "the destination")}, {}};
	bool pin;
	{
		std::lock_guard<std::mutex> l(mu);
		pin = is_pinned(src, n);
	}
	if (!async || !pin) {
		auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
		                                                           (const unsigned char *)src + n);
		op.run = [dst, staged] { return copy((void *)dst, staged->data(), staged->size()); };
		return op;
	}
	if (in_capture) {
		op.run = [dst, src, n] { return copy((void *)dst, src, n); };
		return op;
	}
	const std::uint64_t h = hash(src, n);
	std::string what = op.what;
	op.run = [dst, src, n, h, what] {
		{
			std::lock_guard<std::mutex> l(mu);
			if (!is_pinned(src, n))
				return Fault{CUDA_ERROR_ILLEGAL_ADDRESS, what + ": the pinned source " + hex((std::uint64_t)src) +
				                                             " was freed (cuMemFreeHost) before the copy ran"};
		}
		std::memcpy((void *)dst, src, n);
		if (hash((const void *)dst, n) != h)
			return Fault{CUDA_ERROR_ILLEGAL_STATE,
			             what + " from pinned memory at " + hex((std::uint64_t)src) +
			                 ": the host changed the source after the call and before the copy ran (an async copy "
			                 "reads pinned memory when it runs: wait for the copy's event before reusing the buffer)"};
		return Fault{};
	};
	return op;
}

static CUresult copy_in(const char *call, CUdeviceptr dst, const void *src, std::size_t n, CUstream s, bool async) {
	CUcontext ctx;
	if (CUresult r = async ? enter(call, &ctx) : enter_unsafe(call, &ctx))
		return r;
	if (CUresult r = host_side(call, src, n))
		return r;
	if (n == 0)
		return CUDA_SUCCESS;
	const bool cap = async && capturing(s);
	bool pin;
	{
		std::lock_guard<std::mutex> l(mu);
		pin = is_pinned(src, n);
	}
	if (cap && !pin)
		return refuse_in_capture(call, s, "a captured copy from pageable host memory (the graph would read it at "
		                                  "each replay; the fake allows only pinned memory there)");
	Op op = htod(call, dst, src, n, async, cap);
	const std::string what = op.what;
	Issued at;
	if (CUresult r = submit(call, ctx, async ? s : nullptr, std::move(op), &at))
		return r;
	if (async && pin && !cap && at.stream) {
		std::lock_guard<std::mutex> l(mu);
		protect_pinned(ctx, src, n, at.stream, at.pos, what);
	}
	return CUDA_SUCCESS;
}

// copy_out: a device→host copy. To pageable memory it returns only once the
// copy is done, as real drivers do; to pinned memory an async one is queued.
static CUresult copy_out(const char *call, void *dst, CUdeviceptr src, std::size_t n, CUstream s, bool async) {
	CUcontext ctx;
	if (CUresult r = async ? enter(call, &ctx) : enter_unsafe(call, &ctx))
		return r;
	if (CUresult r = host_side(call, dst, n))
		return r;
	if (n == 0)
		return CUDA_SUCCESS;
	bool pin;
	{
		std::lock_guard<std::mutex> l(mu);
		pin = is_pinned(dst, n);
	}
	if (async && capturing(s) && !pin)
		return refuse_in_capture(call, s, "a captured copy to pageable host memory");
	Op op{std::string(call) + " of " + bytes(n), {range(src, n, false, "the source")},
	      [dst, src, n] { return copy(dst, (const void *)src, n); }};
	if (CUresult r = submit(call, ctx, async ? s : nullptr, std::move(op)))
		return r;
	if (async && !pin && !capturing(s))
		return cuStreamSynchronize(s);
	return CUDA_SUCCESS;
}

template <class T> static Op memset_op(const char *call, CUdeviceptr dst, T v, std::size_t n) {
	return Op{std::string(call) + " of " + std::to_string(n) + " elements",
	          {range(dst, n * sizeof(T), true, "the destination")}, [dst, v, n] {
		          T *p = (T *)dst;
		          for (std::size_t i = 0; i < n; i++)
			          p[i] = v;
		          return Fault{};
	          }};
}

template <class T> static CUresult memset_call(const char *call, CUdeviceptr dst, T v, std::size_t n, CUstream s,
                                               bool async) {
	CUcontext ctx;
	if (CUresult r = async ? enter(call, &ctx) : enter_unsafe(call, &ctx))
		return r;
	if (dst % sizeof(T))
		return fail(call, CUDA_ERROR_INVALID_VALUE,
		            hex(dst) + " is not aligned to " + std::to_string(sizeof(T)) + " bytes");
	if (n == 0)
		return CUDA_SUCCESS;
	return submit(call, ctx, async ? s : nullptr, memset_op(call, dst, v, n));
}

static CUresult copy_dd(const char *call, CUdeviceptr dst, CUdeviceptr src, std::size_t n, CUstream s, bool async) {
	CUcontext ctx;
	if (CUresult r = async ? enter(call, &ctx) : enter_unsafe(call, &ctx))
		return r;
	if (n == 0)
		return CUDA_SUCCESS;
	Op op{std::string(call) + " of " + bytes(n),
	      {range(src, n, false, "the source"), range(dst, n, true, "the destination")},
	      [dst, src, n] {
		      std::memmove((void *)dst, (const void *)src, n);
		      return Fault{};
	      }};
	return submit(call, ctx, async ? s : nullptr, std::move(op));
}

extern "C" {

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
	return copy_in(__func__, dst, src, n, nullptr, false);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	return copy_in(__func__, dst, src, n, s, true);
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return copy_out(__func__, dst, src, n, nullptr, false); }
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) {
	return copy_out(__func__, dst, src, n, s, true);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
	return copy_dd(__func__, dst, src, n, nullptr, false);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
	return copy_dd(__func__, dst, src, n, s, true);
}
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
	return memset_call(__func__, dst, v, n, nullptr, false);
}
CUresult cuMemsetD16_v2(CUdeviceptr dst, unsigned short v, size_t n) {
	return memset_call(__func__, dst, v, n, nullptr, false);
}
CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned int v, size_t n) {
	return memset_call(__func__, dst, v, n, nullptr, false);
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream s) {
	return memset_call(__func__, dst, v, n, s, true);
}
CUresult cuMemsetD16Async(CUdeviceptr dst, unsigned short v, size_t n, CUstream s) {
	return memset_call(__func__, dst, v, n, s, true);
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream s) {
	return memset_call(__func__, dst, v, n, s, true);
}

} // extern "C"
