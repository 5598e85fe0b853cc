// Row-wise kernels over a row-major rows×cols matrix. Block sizes must be a
// multiple of the warp size, at most 1024 (the device launches 256).
//
// The per-batch results (the mean loss, the count of correct rows) are sums
// over every row. They are computed by one block, a warp per row, each warp
// adding its rows in order and the block adding the warps in order: no float
// atomics, so the result is the same bits on every run. A batch is at most a
// few thousand rows of a few classes, a few microseconds for one block.
//
// Each kernel's semantics are those of the CPU device (engine/device/cpu.go).
#include "common.cuh"

// Softmax cross-entropy, forward and backward in one pass: losses[slot] =
// mean over rows of log Σ exp(x) − x[label], and, unless grad is null,
// grad = grad_scale·(softmax(x) − onehot(label)). A non-finite loss sets
// the guard (null: none) to its slot + 1, unless an earlier one did: the
// first diverging step, which makes momentum_sgd a no-op from there on. One
// block.
extern "C" __global__ void softmax_xent(float *grad, float *losses, const float *logits, const int *labels, int slot,
                                        const int *slot_base, int rows, int cols, float grad_scale, int *err,
                                        int *guard) {
	__shared__ float warp_loss[1024 / BL_WARP];
	const int lane = threadIdx.x % BL_WARP, warp = threadIdx.x / BL_WARP, warps = blockDim.x / BL_WARP;
	float total = 0.0f; // this warp's rows; every lane holds the same value
	for (int r = warp; r < rows; r += warps) {
		const float *x = logits + (size_t)r * cols;
		const int label = labels[r];
		if (label < 0 || label >= cols) {
			if (lane == 0)
				bl_report(err, BL_ERR_LABEL, label, r, cols);
			continue;
		}
		// Subtract the row's max before exp, so that large logits do not overflow.
		float m = -INFINITY;
		for (int j = lane; j < cols; j += BL_WARP)
			m = fmaxf(m, x[j]);
		m = bl_warp_max(m);
		float s = 0.0f;
		for (int j = lane; j < cols; j += BL_WARP)
			s += expf(x[j] - m);
		const float log_sum = logf(bl_warp_sum(s));
		total += log_sum - (x[label] - m);
		if (grad) {
			float *g = grad + (size_t)r * cols;
			for (int j = lane; j < cols; j += BL_WARP) {
				float p = expf(x[j] - m - log_sum);
				if (j == label)
					p -= 1.0f;
				g[j] = grad_scale * p;
			}
		}
	}
	if (lane == 0)
		warp_loss[warp] = total;
	__syncthreads();
	if (threadIdx.x == 0) {
		float sum = 0.0f;
		for (int w = 0; w < warps; w++)
			sum += warp_loss[w];
		const int at = bl_slot(slot, slot_base);
		const float loss = rows > 0 ? sum / (float)rows : 0.0f;
		losses[at] = loss;
		if (guard && !(fabsf(loss) < INFINITY)) // NaN or ±Inf
			atomicCAS(guard, 0, at + 1);
	}
}

// counts[slot] = how many rows have their largest logit at their label, the
// first one on ties (as the CPU's scan finds it, for rows without NaN). One
// block.
extern "C" __global__ void count_correct(int *counts, const float *logits, const int *labels, int slot,
                                         const int *slot_base, int rows, int cols) {
	__shared__ int warp_count[1024 / BL_WARP];
	const int lane = threadIdx.x % BL_WARP, warp = threadIdx.x / BL_WARP, warps = blockDim.x / BL_WARP;
	int correct = 0;
	for (int r = warp; r < rows; r += warps) {
		const float *x = logits + (size_t)r * cols;
		// Each lane scans its columns, then the warp keeps the larger value,
		// or the smaller column of equal values.
		float best = lane < cols ? x[lane] : -INFINITY;
		int at = lane < cols ? lane : cols;
		for (int j = lane + BL_WARP; j < cols; j += BL_WARP) {
			if (x[j] > best) {
				best = x[j];
				at = j;
			}
		}
		for (int o = BL_WARP / 2; o > 0; o /= 2) {
			const float b = __shfl_xor_sync(BL_FULL_MASK, best, o);
			const int a = __shfl_xor_sync(BL_FULL_MASK, at, o);
			if (b > best || (b == best && a < at)) {
				best = b;
				at = a;
			}
		}
		correct += at == labels[r];
	}
	if (lane == 0)
		warp_count[warp] = correct;
	__syncthreads();
	if (threadIdx.x == 0) {
		int sum = 0;
		for (int w = 0; w < warps; w++)
			sum += warp_count[w];
		counts[bl_slot(slot, slot_base)] = sum;
	}
}

// dst[j] = beta·dst[j] + Σ_i src[i,j]. A block takes 32 columns at a time
// (a tile; blocks stride over the tiles); its threads are 32 columns ×
// blockDim/32 row groups, so each warp reads 32 consecutive floats of a row.
// Each thread sums its rows in order and the first group adds the groups in
// order: the same bits on every run.
extern "C" __global__ void column_sum(float *dst, const float *src, int rows, int cols, float beta) {
	__shared__ float part[1024 / BL_WARP][BL_WARP];
	const int tx = threadIdx.x % BL_WARP, ty = threadIdx.x / BL_WARP, groups = blockDim.x / BL_WARP;
	const int tiles = (cols + BL_WARP - 1) / BL_WARP;
	for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
		const int j = tile * BL_WARP + tx;
		float s = 0.0f;
		if (j < cols)
			for (int i = ty; i < rows; i += groups)
				s += src[(size_t)i * cols + j];
		part[ty][tx] = s;
		__syncthreads();
		if (ty == 0 && j < cols) {
			float t = 0.0f;
			for (int g = 0; g < groups; g++)
				t += part[g][tx];
			// beta = 0 must not read dst: NaN there would survive 0·NaN.
			dst[j] = beta == 0.0f ? t : beta * dst[j] + t;
		}
		__syncthreads(); // part is reused by the next tile
	}
}
