// driver.h: the fake driver's objects, shared by its translation units
// (driver.cc, memory.cc, module.cc). Not seen by the fake cuBLAS.
#ifndef BATCHLAB_FAKECUDA_DRIVER_H
#define BATCHLAB_FAKECUDA_DRIVER_H

#include "fake.h"
#include "kernels.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>

namespace fake {

// mu guards every object below; changed is notified whenever stream work
// completes or an event is reached, so that waiters re-check. Both are
// never destroyed: stream workers may still wait on them at exit.
extern std::mutex &mu;
extern std::condition_variable &changed;

// Clock is a vector clock over a context's streams (index 0 is the host and
// the legacy stream): entry i is how many items of stream i are ordered
// before. Work a happens before work b when b's clock covers a's position.
using Clock = std::vector<std::uint64_t>;
void join(Clock &into, const Clock &from);
std::uint64_t at(const Clock &c, int i);

// Settings read from the environment once (README.md).
struct Settings {
	std::uint64_t memory;   // FAKECUDA_MEMORY
	std::uint64_t seed;     // FAKECUDA_SEED
	unsigned delay_us;      // FAKECUDA_DELAY_US
	int driver_version;     // FAKECUDA_DRIVER_VERSION
};
const Settings &settings();

// handles holds every handle the fake ever made (objects are never freed,
// only marked dead), so that a handle can be checked before it is used.
bool known(const void *handle);
void remember(const void *handle);

} // namespace fake

struct CUctx_st {
	std::uint64_t serial;
	bool destroyed = false;
	fake::Fault sticky;                 // the first asynchronous failure: the context is dead
	int sticky_reports = 0;             // calls that returned it
	std::vector<CUstream_st *> streams; // live ones
	int next_stream = 1;
	fake::Clock host{1}; // what the host has seen complete
	fake::Clock retired; // the clocks of destroyed streams, once drained
};
struct CUevent_st {
	CUctx_st *ctx;
	unsigned flags;
	bool destroyed = false;
	std::uint64_t recorded = 0, reached = 0; // records issued, records reached
	fake::Clock clock;                        // of the last record issued
	std::chrono::steady_clock::time_point time;
};

// Capture is a stream's capture in progress.
struct Capture {
	CUstreamCaptureMode mode;
	std::thread::id thread;
	std::vector<fake::Op> nodes;
	std::string invalid; // why it was invalidated, "" while valid
};

// Item is one entry of a stream's queue: ops to run (one, or a graph's
// nodes), or an event to record, or an event to wait for.
struct Item {
	std::vector<fake::Op> ops;
	fake::Clock clock;
	std::uint64_t seq;
	CUevent_st *record = nullptr, *wait = nullptr;
	std::uint64_t event_seq = 0;
};

struct CUstream_st {
	CUctx_st *ctx;
	int id; // index in the context's clocks
	unsigned flags;
	bool destroyed = false;
	std::deque<Item> queue; // the front one is running
	std::uint64_t issued = 0, done = 0;
	fake::Clock clock;
	std::mt19937_64 rng;
	Capture *capture = nullptr;
};

struct CUgraph_st {
	CUctx_st *ctx;
	std::vector<fake::Op> nodes;
	bool destroyed = false;
};

struct CUgraphExec_st {
	CUctx_st *ctx;
	std::vector<fake::Op> nodes;
	bool destroyed = false;
};

// Param is one parameter of a PTX .entry.
struct Param {
	std::string name, type; // type: "u64", "u32", "f32", "b8[12]", ...
	std::size_t size, align, offset;
};

struct CUmod_st {
	CUctx_st *ctx;
	bool unloaded = false;
	std::map<std::string, CUfunc_st *> funcs;
};

struct CUfunc_st {
	CUmod_st *mod;
	std::string name;
	std::vector<Param> params;
	std::size_t param_bytes;   // the layout's size, with natural alignment
	std::size_t static_shared; // bytes of .shared declared in the entry
	const fake::Kernel *kernel;
	std::vector<bool> writes; // per parameter: the kernel may store through it (module.cc)
};

namespace fake {

// queued_use (driver.cc) names unfinished work that touches [lo, hi).
std::string queued_use(CUctx_st *ctx, std::uint64_t lo, std::uint64_t hi);

// The memory side (memory.cc), called with mu held.
void install_fault_handler();
// check_access validates one access of work of ctx run at clock c on
// stream; it records the access for the race check.
Fault check_access(CUctx_st *ctx, const Access &a, int stream, const Clock &c, const std::string &work);
// check_guards checks the guard zones of the allocations the accesses hit.
Fault check_guards(const std::vector<Access> &access, const std::string &work);
// describe says what address p is: "inside allocation ...", "a host pointer", ...
std::string describe(std::uint64_t p);
bool in_arena(std::uint64_t p);
// pinned_live returns the size of the live pinned allocation containing
// [p, p+n), or 0 if there is none.
bool is_pinned(const void *p, std::size_t n);
// protect_pinned makes the whole pages of [p, p+n), the pinned source of an
// async copy issued at position pos of stream, read-only until the host
// synchronizes with the copy (release_pinned), so that a host write before
// then faults and is named, whatever the timing.
void protect_pinned(CUctx_st *ctx, const void *p, std::size_t n, int stream, std::uint64_t pos, const std::string &what);
void release_pinned(CUctx_st *ctx);
// kernel_running names the kernel the SIGSEGV handler reports.
void set_running_kernel(const char *name);

} // namespace fake

#endif
