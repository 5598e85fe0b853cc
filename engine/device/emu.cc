//go:build emu

// The kernels of kernels/*.cu compiled for the host through the emulation
// header, and a registry that launches them by name with packed arguments
// (the slots of launch.slots in launch.go). See emu.go.
#include "../../kernels/emu/cuda_emu.h"

#include "../../kernels/elementwise.cu"
#include "../../kernels/rows.cu"
#include "../../kernels/batchnorm.cu"

#include <cstdio>
#include <utility>

namespace {

// arg reads a parameter of type T from the low bytes of its 8-byte slot.
template <class T> T arg(const std::uint64_t *slot) {
	T v;
	std::memcpy(&v, slot, sizeof v);
	return v;
}

template <class... A, std::size_t... I>
void call(void (*kernel)(A...), const std::uint64_t *slots, std::index_sequence<I...>) {
	kernel(arg<A>(slots + I)...);
}

template <class... A> constexpr int arity(void (*)(A...)) { return sizeof...(A); }

struct Entry {
	const char *name;
	int arity;
	void (*call)(const std::uint64_t *slots);
};

#define BL_KERNEL(k)                                                                                  \
	Entry {                                                                                           \
		#k, arity(k), [](const std::uint64_t *slots) {                                                \
			call(k, slots, std::make_index_sequence<arity(k)>{});                                     \
		}                                                                                             \
	}

const Entry registry[] = {
	BL_KERNEL(add_bias),        BL_KERNEL(relu),           BL_KERNEL(relu_backward), BL_KERNEL(momentum_sgd),
	BL_KERNEL(normalize_bytes), BL_KERNEL(gather_rows_u32), BL_KERNEL(gather_rows_u8), BL_KERNEL(softmax_xent),
	BL_KERNEL(count_correct),   BL_KERNEL(column_sum),      BL_KERNEL(bn_train),       BL_KERNEL(bn_infer),
	BL_KERNEL(bn_backward),
};

const Entry *find(const char *name) {
	for (const Entry &e : registry)
		if (std::strcmp(e.name, name) == 0)
			return &e;
	return nullptr;
}

} // namespace

extern "C" {

// emu_arity is the number of parameters of a kernel; -1 if there is none
// of that name.
int emu_arity(const char *name) {
	const Entry *e = find(name);
	return e ? e->arity : -1;
}

// emu_launch runs a kernel to completion and returns 0, or 1 with a message
// in msg (an unknown kernel, a wrong argument count, an emulation fault).
int emu_launch(const char *name, unsigned grid, unsigned block, const std::uint64_t *slots, int nslots, char *msg,
               int msglen) {
	static std::mutex mu; // __shared__ variables are static: one launch at a time
	std::lock_guard<std::mutex> lock(mu);
	const Entry *e = find(name);
	std::string fault;
	if (!e)
		fault = "no kernel named " + std::string(name);
	else if (e->arity != nslots)
		fault = std::string(name) + " takes " + std::to_string(e->arity) + " arguments, got " + std::to_string(nslots);
	else
		fault = emu::run(dim3{grid, 1, 1}, dim3{block, 1, 1}, [e, slots] { e->call(slots); });
	if (fault.empty())
		return 0;
	std::snprintf(msg, msglen, "%s", fault.c_str());
	return 1;
}
}
