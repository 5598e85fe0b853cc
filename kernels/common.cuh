// Helpers shared by the kernels. Everything here compiles with nvcc for the
// GPU and with g++ through fakecuda/fiber_emu.h for the host emulation, so it uses
// only what that header provides.
#ifndef BATCHLAB_COMMON_CUH
#define BATCHLAB_COMMON_CUH

#define BL_WARP 32
#define BL_FULL_MASK 0xffffffffu

// BL_FOR loops i over [0, n) one element per thread, grid-stride: any grid
// covers any n (the device caps the grid; see gridFor in
// engine/device/launch.go).
#define BL_FOR(i, n) \
	for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)(n); i += blockDim.x * gridDim.x)

// Kernels that validate their input report the first bad value in a small
// error block of four ints: a code and three details. The device maps it to
// a Go error at Sync (engine/device/launch.go, kernelError). Keep the codes
// in step with the Go constants there.
#define BL_ERR_LABEL 1 // details: label, row, classes
#define BL_ERR_INDEX 2 // details: index, row, source rows

// bl_report records an error unless one is recorded already: the code goes
// in by compare-and-swap, so the details are those of the winning thread.
static __device__ __forceinline__ void bl_report(int *err, int code, int a, int b, int c) {
	if (atomicCAS(err, 0, code) == 0) {
		err[1] = a;
		err[2] = b;
		err[3] = c;
	}
}

// The warp reductions use the xor butterfly: every lane ends with the same
// result, and a + b rounds the same as b + a, so the result is the same bits
// on every run. Every lane of the warp must call them.
static __device__ __forceinline__ float bl_warp_max(float v) {
	for (int o = BL_WARP / 2; o > 0; o /= 2)
		v = fmaxf(v, __shfl_xor_sync(BL_FULL_MASK, v, o));
	return v;
}

static __device__ __forceinline__ float bl_warp_sum(float v) {
	for (int o = BL_WARP / 2; o > 0; o /= 2)
		v += __shfl_xor_sync(BL_FULL_MASK, v, o);
	return v;
}

// bl_slot is where a per-step result goes: slot, plus the replay's base when
// the call runs inside a CUDA graph (base is then a device int the device
// sets before each replay; see Grapher in engine/device).
static __device__ __forceinline__ int bl_slot(int slot, const int *base) {
	return base ? slot + *base : slot;
}

#endif
