// cuda_emu.h: just enough of CUDA C++ to compile batchlab's kernels
// (kernels/*.cu) with g++ -std=c++20 and run them on the host, so that they
// are tested against the CPU reference on machines without a GPU (the fake
// driver, kernels/fakecuda, launches them this way).
//
// The model, and what it checks:
//   - A launch starts one std::thread per CUDA thread of a block. The same
//     threads then run every block of the grid, one block after another,
//     meeting at a barrier between blocks, so a block's __shared__ memory
//     (a static variable here) is never used by two blocks at once.
//   - __syncthreads is a std::barrier over the block's threads. A thread
//     that skips one (a __syncthreads under a condition that differs
//     between threads, undefined on a GPU) is reported as a fault when the
//     block ends, or deadlocks the launch.
//   - Warp shuffles exchange values through a per-warp array between two
//     arrivals at a per-warp barrier: every lane of the warp must take part,
//     with the full mask (what the kernels here do); anything else is a
//     fault, since the emulation could not tell what a GPU would do.
//   - atomicCAS on int is a std::atomic_ref compare-exchange.
// Threads really run concurrently, so a missing barrier is a real race here
// as on a GPU (and a sanitizer can see it). Memory is the host's: kernels
// get host pointers where the CUDA device passes device addresses.
#ifndef BATCHLAB_CUDA_EMU_H
#define BATCHLAB_CUDA_EMU_H

#include <math.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};

namespace emu {

constexpr unsigned warp_size = 32;

struct Warp {
	explicit Warp(std::ptrdiff_t lanes) : lanes(lanes), bar(lanes) {}
	std::ptrdiff_t lanes;
	std::barrier<> bar;
	std::uint64_t slot[warp_size];
};

// The state of the running launch: set up before its threads start.
struct Launch {
	Launch(dim3 grid, dim3 block, unsigned threads) : grid(grid), block(block), bar(threads), syncs(threads) {
		for (unsigned w = 0; w * warp_size < threads; w++)
			warps.push_back(std::make_unique<Warp>(std::min(warp_size, threads - w * warp_size)));
	}
	dim3 grid, block;
	std::barrier<> bar;                       // the block's __syncthreads
	std::vector<std::unique_ptr<Warp>> warps; // each warp's shuffles
	std::vector<unsigned> syncs;              // __syncthreads per thread in this block
	std::mutex mu;
	std::string fault; // the first one
};

inline Launch *current; // one launch at a time (emu_launch serializes them)
inline thread_local dim3 thread_idx, block_idx;
inline thread_local unsigned tid; // the thread's linear index in its block

inline void fault(const std::string &what) {
	std::lock_guard<std::mutex> lock(current->mu);
	if (current->fault.empty())
		current->fault = what;
}

// shuffle returns v of lane src of the calling thread's warp.
template <class T> T shuffle(unsigned mask, T v, unsigned src) {
	static_assert(sizeof(T) <= sizeof(std::uint64_t), "shuffle of a type wider than 8 bytes");
	Warp &w = *current->warps[tid / warp_size];
	const unsigned lane = tid % warp_size;
	if (mask != 0xffffffffu || w.lanes != warp_size)
		fault("warp shuffle with a partial mask or a partial warp: not emulated");
	std::memcpy(&w.slot[lane], &v, sizeof v);
	w.bar.arrive_and_wait(); // every lane has written
	T out;
	std::memcpy(&out, &w.slot[src], sizeof out);
	w.bar.arrive_and_wait(); // every lane has read: the slots may be reused
	return out;
}

// run runs kernel as a grid×block launch and returns its first fault, or "".
inline std::string run(dim3 grid, dim3 block, const std::function<void()> &kernel) {
	const unsigned threads = block.x * block.y * block.z, blocks = grid.x * grid.y * grid.z;
	if (threads == 0 || threads > 1024)
		return "block of " + std::to_string(threads) + " threads: CUDA allows 1 to 1024";
	Launch l(grid, block, threads);
	current = &l;
	std::vector<std::thread> pool;
	for (unsigned t = 0; t < threads; t++) {
		pool.emplace_back([&l, &kernel, t, blocks] {
			tid = t;
			thread_idx = {t % l.block.x, t / l.block.x % l.block.y, t / (l.block.x * l.block.y)};
			for (unsigned b = 0; b < blocks; b++) {
				block_idx = {b % l.grid.x, b / l.grid.x % l.grid.y, b / (l.grid.x * l.grid.y)};
				kernel();
				l.bar.arrive_and_wait(); // the block is done
				if (t == 0) {
					for (unsigned s : l.syncs)
						if (s != l.syncs[0])
							fault("block " + std::to_string(b) +
							      ": threads reached __syncthreads different numbers of times");
					std::fill(l.syncs.begin(), l.syncs.end(), 0);
				}
				l.bar.arrive_and_wait(); // the next block starts afresh
			}
		});
	}
	for (auto &th : pool)
		th.join();
	current = nullptr;
	return l.fault;
}

} // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::current->block)
#define gridDim (emu::current->grid)

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static // one block at a time: one copy serves them all

inline void __syncthreads() {
	emu::current->syncs[emu::tid]++;
	emu::current->bar.arrive_and_wait();
}

template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
	return emu::shuffle(mask, v, (emu::tid % emu::warp_size) ^ unsigned(lane_mask));
}

inline int atomicCAS(int *address, int compare, int val) {
	std::atomic_ref<int>(*address).compare_exchange_strong(compare, val);
	return compare; // the old value, as CUDA's
}

#endif
