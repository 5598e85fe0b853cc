// kernels.h: the registry of host-compiled kernels (kernels.cc).
#ifndef BATCHLAB_FAKECUDA_KERNELS_H
#define BATCHLAB_FAKECUDA_KERNELS_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace fake {

// Kernel is one kernel of kernels/*.cu with its C signature: the size of
// each parameter and whether it is a pointer, which cuModuleLoadData checks
// against the PTX .param list.
struct Kernel {
	const char *name;
	int arity;
	const std::size_t *sizes;
	const bool *pointers;
	void (*call)(const unsigned char *buf, const std::size_t *offsets);
};

// find_kernel returns the kernel of that entry name, or nullptr.
const Kernel *find_kernel(const std::string &name);

// run_kernel runs k to completion as a grid×block launch with its
// parameters at offsets in buf, on the calling thread; seed orders its
// threads between barriers. It returns the emulation's first fault, or "".
// One launch at a time: __shared__ variables are static.
std::string run_kernel(const Kernel &k, const unsigned grid[3], const unsigned block[3], const unsigned char *buf,
                       const std::size_t *offsets, std::uint64_t seed);

} // namespace fake

#endif
