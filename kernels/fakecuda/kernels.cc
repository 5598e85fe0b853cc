// kernels.cc: batchlab's kernels (kernels/*.cu) compiled for the host
// through the fiber emulation (fiber_emu.h), and the registry the fake's cuLaunchKernel finds
// them in by their PTX entry name. This file does not include cuda.h: the
// emulation header defines CUDA C's keywords as macros.
#include "kernels.h"

#include "fiber_emu.h"

#include "../batchnorm.cu"
#include "../conv.cu"
#include "../elementwise.cu"
#include "../rows.cu"

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
    FAKE_KERNEL(bn_backward),     FAKE_KERNEL(adam),            FAKE_KERNEL(im2col),
    FAKE_KERNEL(col2im),          FAKE_KERNEL(swap_axes),       FAKE_KERNEL(maxpool),
    FAKE_KERNEL(maxpool_backward),
};

} // namespace

const Kernel *find_kernel(const std::string &name) {
	for (const Kernel &k : registry)
		if (name == k.name)
			return &k;
	return nullptr;
}

std::string run_kernel(const Kernel &k, const unsigned grid[3], const unsigned block[3], const unsigned char *buf,
                       const std::size_t *offsets, std::uint64_t seed) {
	std::mt19937_64 rng(seed);
	return femu::run(dim3{grid[0], grid[1], grid[2]}, dim3{block[0], block[1], block[2]},
	                 [&] { k.call(buf, offsets); }, rng);
}

} // namespace fake
