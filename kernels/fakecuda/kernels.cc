// kernels.cc: batchlab's kernels (kernels/*.cu) compiled for the host
// through the emulation header, and the registry the fake's cuLaunchKernel
// finds them in by their PTX entry name. This file does not include
// cuda.h: the emulation header defines CUDA C's keywords as macros.
#include "kernels.h"

#include "../emu/cuda_emu.h"

#include "../batchnorm.cu"
#include "../elementwise.cu"
#include "../rows.cu"

#include <condition_variable>
#include <cstring>
#include <type_traits>
#include <utility>

namespace fake {
namespace {

// arg reads a parameter of type T at its offset in the launch's parameter
// buffer (the PTX layout: see module.cc).
template <class T> T arg(const unsigned char *buf, std::size_t off) {
	T v;
	std::memcpy(&v, buf + off, sizeof v);
	return v;
}

template <class... A, std::size_t... I>
void call(void (*kernel)(A...), const unsigned char *buf, const std::size_t *off, std::index_sequence<I...>) {
	kernel(arg<A>(buf, off[I])...);
}

template <class... A> constexpr int arity(void (*)(A...)) { return sizeof...(A); }

template <class... A> struct Signature {
	static constexpr std::size_t sizes[] = {sizeof(A)..., 0};
	static constexpr bool pointers[] = {std::is_pointer_v<A>..., false};
};
template <class... A> constexpr const std::size_t *sizes_of(void (*)(A...)) { return Signature<A...>::sizes; }
template <class... A> constexpr const bool *pointers_of(void (*)(A...)) { return Signature<A...>::pointers; }

#define FAKE_KERNEL(k)                                                                                      \
	Kernel {                                                                                                \
		#k, arity(k), sizes_of(k), pointers_of(k), [](const unsigned char *buf, const std::size_t *off) {   \
			call(k, buf, off, std::make_index_sequence<arity(k)>{});                                       \
		}                                                                                                   \
	}

const Kernel registry[] = {
    FAKE_KERNEL(add_bias),        FAKE_KERNEL(relu),            FAKE_KERNEL(relu_backward),
    FAKE_KERNEL(momentum_sgd),    FAKE_KERNEL(normalize_bytes), FAKE_KERNEL(gather_rows_u32),
    FAKE_KERNEL(gather_rows_u8),  FAKE_KERNEL(softmax_xent),    FAKE_KERNEL(count_correct),
    FAKE_KERNEL(column_sum),      FAKE_KERNEL(bn_train),        FAKE_KERNEL(bn_infer),
    FAKE_KERNEL(bn_backward),
};

} // namespace

const Kernel *find_kernel(const std::string &name) {
	for (const Kernel &k : registry)
		if (name == k.name)
			return &k;
	return nullptr;
}

namespace {

// Pool runs launches on persistent threads, one per CUDA thread of the
// largest block so far: emu::run starts and joins a thread per CUDA thread
// at every launch, which dominated the fake's launches. A pool thread
// runs emu::run's per-thread loop over the blocks.
class Pool {
public:
	std::string run(dim3 grid, dim3 block, const std::function<void()> &kernel) {
		const unsigned threads = block.x * block.y * block.z;
		emu::Launch l(grid, block, threads);
		std::unique_lock<std::mutex> g(mu_);
		while (pool_.size() < threads)
			std::thread(&Pool::loop, this, (unsigned)pool_.size()).detach(), pool_.push_back(0);
		emu::current = &l;
		launch_ = &l;
		kernel_ = &kernel;
		active_ = remaining_ = threads;
		gen_++;
		go_.notify_all();
		done_.wait(g, [this] { return remaining_ == 0; });
		emu::current = nullptr;
		return l.fault;
	}

private:
	void loop(unsigned t) {
		unsigned seen = 0;
		for (;;) {
			std::unique_lock<std::mutex> g(mu_);
			go_.wait(g, [&] { return gen_ != seen && t < active_; });
			seen = gen_;
			emu::Launch &l = *launch_;
			const std::function<void()> &kernel = *kernel_;
			g.unlock();
			body(l, kernel, t);
			g.lock();
			if (--remaining_ == 0)
				done_.notify_all();
		}
	}

	// body is thread t's part of the launch, as in emu::run.
	static void body(emu::Launch &l, const std::function<void()> &kernel, unsigned t) {
		const unsigned blocks = l.grid.x * l.grid.y * l.grid.z;
		emu::tid = t;
		emu::thread_idx = {t % l.block.x, t / l.block.x % l.block.y, t / (l.block.x * l.block.y)};
		for (unsigned b = 0; b < blocks; b++) {
			emu::block_idx = {b % l.grid.x, b / l.grid.x % l.grid.y, b / (l.grid.x * l.grid.y)};
			kernel();
			l.bar.arrive_and_wait(); // the block is done
			if (t == 0) {
				for (unsigned s : l.syncs)
					if (s != l.syncs[0])
						emu::fault("block " + std::to_string(b) +
						           ": threads reached __syncthreads different numbers of times");
				std::fill(l.syncs.begin(), l.syncs.end(), 0);
			}
			l.bar.arrive_and_wait(); // the next block starts afresh
		}
	}

	std::mutex mu_;
	std::condition_variable go_, done_;
	std::vector<char> pool_; // one entry per thread started
	emu::Launch *launch_ = nullptr;
	const std::function<void()> *kernel_ = nullptr;
	unsigned gen_ = 0, active_ = 0, remaining_ = 0;
};

Pool &pool = *new Pool; // never destroyed: its threads wait on it at exit

} // namespace

std::string run_kernel(const Kernel &k, const unsigned grid[3], const unsigned block[3], const unsigned char *buf,
                       const std::size_t *offsets) {
	return pool.run(dim3{grid[0], grid[1], grid[2]}, dim3{block[0], block[1], block[2]},
	                [&] { k.call(buf, offsets); });
}

} // namespace fake
