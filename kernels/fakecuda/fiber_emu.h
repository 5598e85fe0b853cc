// fiber_emu.h: the subset of CUDA C++ that batchlab's kernels use
// (kernels/*.cu), for the fake driver: every CUDA thread of a block is a
// fiber (ucontext) on the calling OS thread, and the fibers take turns at
// __syncthreads and warp shuffles.
//
// Why fibers, not an OS thread per CUDA thread (the emulation's first
// form): on the 2-core CI machines a 256-thread block of OS threads meeting
// at barriers thrashed the scheduler (load averages in the hundreds,
// seconds per row-kernel launch) once several test binaries ran under the
// fake. Fibers switch only where a GPU thread would wait, so a launch costs
// a context switch per thread per barrier. What it checks: a __syncthreads
// not reached by every thread of the block, or
// a shuffle without its whole warp, is a fault, not a hang. A missing
// barrier still shows as wrong data: between barriers each fiber runs
// alone, in an order drawn afresh (seeded) at every barrier, so a thread
// reads what another has not written yet, in either direction.
#ifndef BATCHLAB_FAKECUDA_FIBER_EMU_H
#define BATCHLAB_FAKECUDA_FIBER_EMU_H

#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};

namespace femu {

constexpr unsigned warp_size = 32, max_threads = 1024;
constexpr std::size_t stack_size = 64 << 10;

// Barrier counts arrivals; the last one releases the others.
struct Barrier {
	unsigned expected = 0, count = 0, gen = 0;
};

struct Fiber {
	ucontext_t uc;
	dim3 idx;
	unsigned tid, syncs;
	bool done;
};

// Launch is the state of the running launch, on the OS thread running it.
struct Launch {
	dim3 grid, block, block_idx;
	unsigned threads;
	std::vector<Fiber> fibers;
	Barrier block_bar;
	std::vector<Barrier> warp_bar;
	std::vector<std::uint64_t> slots; // a warp's shuffle values
	std::uint64_t progress = 0;       // arrivals and completions, to tell a deadlock
	std::string fault;
	ucontext_t sched;
	const std::function<void()> *kernel;
};

inline thread_local Launch *current;
inline thread_local Fiber *self;

inline void fault(const std::string &what) {
	if (current->fault.empty())
		current->fault = what;
}

inline void yield() { swapcontext(&self->uc, &current->sched); }

inline void wait(Barrier &b) {
	current->progress++;
	const unsigned gen = b.gen;
	if (++b.count == b.expected) {
		b.count = 0;
		b.gen++;
		return;
	}
	while (b.gen == gen)
		yield();
}

template <class T> T shfl_xor(unsigned mask, T v, int lane_mask) {
	static_assert(sizeof(T) <= sizeof(std::uint64_t), "shuffle of a type wider than 8 bytes");
	const unsigned w = self->tid / warp_size, lane = self->tid % warp_size;
	Barrier &bar = current->warp_bar[w];
	if (mask != 0xffffffffu || bar.expected != warp_size)
		fault("warp shuffle with a partial mask or a partial warp: not emulated");
	std::uint64_t *slot = &current->slots[w * warp_size];
	std::memcpy(&slot[lane], &v, sizeof v);
	wait(bar); // every lane has written
	T out;
	std::memcpy(&out, &slot[(lane ^ unsigned(lane_mask)) % warp_size], sizeof out);
	wait(bar); // every lane has read: the slots may be reused
	return out;
}

// Stacks are made once, each with a guard page below it, and reused by
// every launch: launches run one at a time (kernel_lock in module.cc), on
// whichever stream worker. Once, because every guard page is a mapping of
// its own and a process has only so many (vm.max_map_count).
inline char *stacks() {
	static char *base = [] {
		const std::size_t each = stack_size + 4096;
		char *p = (char *)mmap(nullptr, each * max_threads, PROT_READ | PROT_WRITE,
		                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return (char *)nullptr;
		for (unsigned i = 0; i < max_threads; i++)
			mprotect(p + i * each, 4096, PROT_NONE);
		return p;
	}();
	return base;
}

inline void entry() {
	(*current->kernel)();
	self->done = true;
	current->progress++;
	// returning resumes uc_link: the scheduler
}

// run runs kernel as a grid×block launch with fibers ordered by rng and
// returns its first fault, or "".
inline std::string run(dim3 grid, dim3 block, const std::function<void()> &kernel, std::mt19937_64 &rng) {
	Launch l;
	l.grid = grid, l.block = block, l.kernel = &kernel;
	l.threads = block.x * block.y * block.z;
	if (l.threads == 0 || l.threads > max_threads)
		return "block of " + std::to_string(l.threads) + " threads: CUDA allows 1 to 1024";
	char *base = stacks();
	if (!base)
		return "no memory for the fibers' stacks";
	l.fibers.resize(l.threads);
	l.warp_bar.resize((l.threads + warp_size - 1) / warp_size);
	l.slots.resize(l.warp_bar.size() * warp_size);
	std::vector<unsigned> order(l.threads);
	Launch *outer = current;
	current = &l;
	const unsigned blocks = grid.x * grid.y * grid.z;
	for (unsigned b = 0; b < blocks && l.fault.empty(); b++) {
		l.block_idx = {b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y)};
		l.block_bar = Barrier{l.threads};
		for (unsigned w = 0; w < l.warp_bar.size(); w++)
			l.warp_bar[w] = Barrier{std::min(warp_size, l.threads - w * warp_size)};
		ucontext_t blank;
		getcontext(&blank); // once: getcontext is a system call
		for (unsigned t = 0; t < l.threads; t++) {
			Fiber &f = l.fibers[t];
			f.tid = t, f.syncs = 0, f.done = false;
			f.idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
			f.uc = blank;
			f.uc.uc_stack.ss_sp = base + t * (stack_size + 4096) + 4096;
			f.uc.uc_stack.ss_size = stack_size;
			f.uc.uc_link = &l.sched;
			makecontext(&f.uc, entry, 0);
			order[t] = t;
		}
		for (unsigned left = l.threads; left > 0;) {
			std::shuffle(order.begin(), order.end(), rng);
			const std::uint64_t before = l.progress;
			for (unsigned t : order) {
				Fiber &f = l.fibers[t];
				if (f.done)
					continue;
				self = &f;
				swapcontext(&l.sched, &f.uc);
				left -= f.done;
			}
			if (left > 0 && l.progress == before) {
				fault("block " + std::to_string(b) +
				      ": threads wait at a __syncthreads or a shuffle that others never reach");
				break; // the waiting fibers are abandoned; their stacks are reused
			}
		}
		for (const Fiber &f : l.fibers)
			if (l.fault.empty() && f.syncs != l.fibers[0].syncs)
				fault("block " + std::to_string(b) + ": threads reached __syncthreads different numbers of times");
	}
	current = outer;
	return l.fault;
}

} // namespace femu

#define threadIdx (femu::self->idx)
#define blockIdx (femu::current->block_idx)
#define blockDim (femu::current->block)
#define gridDim (femu::current->grid)

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static // one block at a time: one copy serves them all

inline void __syncthreads() {
	femu::self->syncs++;
	femu::wait(femu::current->block_bar);
}

template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask) { return femu::shfl_xor(mask, v, lane_mask); }

// Fibers switch only at barriers, so a compare-and-swap needs no atomics.
inline int atomicCAS(int *address, int compare, int val) {
	const int old = *address;
	if (old == compare)
		*address = val;
	return old;
}

#endif
