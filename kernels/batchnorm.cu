// Ghost batch normalization over a row-major rows×cols matrix whose rows
// split into groups of size consecutive rows (the last may be shorter); each
// group is normalized with its own per-column statistics. Block sizes must
// be a multiple of the warp size, at most 1024 (the device launches 256).
//
// bn_train and bn_backward give each block tiles of 32 columns (blocks
// stride over the tiles); its threads are 32 columns × blockDim/32 row
// lanes, so each warp reads 32 consecutive floats of a row. A block takes
// its tile's groups one after another, in order: each thread sums its rows
// in order, and the first lane adds the lanes in order (no float atomics,
// the same bits on every run), and the running statistics and the gradients
// of gamma and beta are updated group after group as on the CPU. These
// layers are small (a few hundred columns), so a block per tile is enough.
//
// Statistics are float; each kernel's semantics are those of the CPU device
// (engine/device/cpu_batchnorm.go), which computes them in float64.
#include "common.cuh"

// bl_col_total returns to every thread of a tile block the sum over the row
// lanes of the v of its column, added in lane order. Every thread of the
// block must call it (it synchronizes); part and total are the block's
// shared scratch.
static __device__ __forceinline__ float bl_col_total(float (*part)[BL_WARP], float *total, float v, int tx, int ty,
                                                     int lanes) {
	part[ty][tx] = v;
	__syncthreads();
	if (ty == 0) {
		float t = 0.0f;
		for (int l = 0; l < lanes; l++)
			t += part[l][tx];
		total[tx] = t;
	}
	__syncthreads();
	// part and total are written again only after the next call's first
	// barrier, which every thread reaches after reading total here.
	return total[tx];
}

// Training forward pass: for each group k and column j, with μ and σ² the
// group's mean and biased variance, y = gamma·(x−μ)·invStd + beta,
// invStd = 1/√(σ²+eps); mean[k,j] = μ and inv_std[k,j] = invStd; then the
// running statistics r = (1−momentum)·r + momentum·s, with the unbiased
// variance (n−1, at least 1) for run_var, group after group.
extern "C" __global__ void bn_train(float *y, const float *x, const float *gamma, const float *beta, float *mean,
                                    float *inv_std, float *run_mean, float *run_var, int rows, int cols, int size,
                                    int groups, float momentum, float eps) {
	__shared__ float part[1024 / BL_WARP][BL_WARP];
	__shared__ float total[BL_WARP];
	const int tx = threadIdx.x % BL_WARP, ty = threadIdx.x / BL_WARP, lanes = blockDim.x / BL_WARP;
	const int tiles = (cols + BL_WARP - 1) / BL_WARP;
	for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
		const int j = tile * BL_WARP + tx;
		const bool in = j < cols;
		for (int k = 0; k < groups; k++) {
			const int lo = k * size, hi = rows - lo < size ? rows : lo + size;
			const float n = (float)(hi - lo);
			float s = 0.0f;
			if (in)
				for (int i = lo + ty; i < hi; i += lanes)
					s += x[(size_t)i * cols + j];
			const float m = bl_col_total(part, total, s, tx, ty, lanes) / n;
			float sq = 0.0f;
			if (in)
				for (int i = lo + ty; i < hi; i += lanes) {
					const float d = x[(size_t)i * cols + j] - m;
					sq += d * d;
				}
			sq = bl_col_total(part, total, sq, tx, ty, lanes);
			const float is = 1.0f / sqrtf(sq / n + eps);
			if (!in)
				continue;
			const float g = gamma[j], b = beta[j];
			for (int i = lo + ty; i < hi; i += lanes)
				y[(size_t)i * cols + j] = g * ((x[(size_t)i * cols + j] - m) * is) + b;
			if (ty == 0) {
				mean[(size_t)k * cols + j] = m;
				inv_std[(size_t)k * cols + j] = is;
				const float unbiased = sq / fmaxf(n - 1.0f, 1.0f);
				run_mean[j] = (1.0f - momentum) * run_mean[j] + momentum * m;
				run_var[j] = (1.0f - momentum) * run_var[j] + momentum * unbiased;
			}
		}
	}
}

// Inference: y = gamma·(x − run_mean)/√(run_var+eps) + beta, elementwise
// over n = rows·cols in a grid-stride loop (unsigned indices, as in
// elementwise.cu).
extern "C" __global__ void bn_infer(float *y, const float *x, const float *gamma, const float *beta,
                                    const float *run_mean, const float *run_var, int n, int cols, float eps) {
	for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)n; i += blockDim.x * gridDim.x) {
		const unsigned j = i % (unsigned)cols;
		const float is = 1.0f / sqrtf(run_var[j] + eps);
		y[i] = gamma[j] * ((x[i] - run_mean[j]) * is) + beta[j];
	}
}

// Backward pass, from what bn_train saved: per group and column, with
// x̂ = (x−μ)·invStd, Σdy and Σdy·x̂, then
// dx = gamma·invStd/n · (n·dy − Σdy − x̂·Σdy·x̂); dbeta = Σdy and
// dgamma = Σdy·x̂, each summed over the groups in order. dx may be dy.
extern "C" __global__ void bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                       const float *gamma, const float *mean, const float *inv_std, int rows,
                                       int cols, int size, int groups) {
	__shared__ float part[1024 / BL_WARP][BL_WARP];
	__shared__ float total[BL_WARP];
	const int tx = threadIdx.x % BL_WARP, ty = threadIdx.x / BL_WARP, lanes = blockDim.x / BL_WARP;
	const int tiles = (cols + BL_WARP - 1) / BL_WARP;
	for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
		const int j = tile * BL_WARP + tx;
		const bool in = j < cols;
		float dg = 0.0f, db = 0.0f;
		for (int k = 0; k < groups; k++) {
			const int lo = k * size, hi = rows - lo < size ? rows : lo + size;
			const float n = (float)(hi - lo);
			float m = 0.0f, is = 0.0f, sd = 0.0f, sdx = 0.0f;
			if (in) {
				m = mean[(size_t)k * cols + j];
				is = inv_std[(size_t)k * cols + j];
				for (int i = lo + ty; i < hi; i += lanes) {
					const float d = dy[(size_t)i * cols + j];
					sd += d;
					sdx += d * ((x[(size_t)i * cols + j] - m) * is);
				}
			}
			sd = bl_col_total(part, total, sd, tx, ty, lanes);
			sdx = bl_col_total(part, total, sdx, tx, ty, lanes);
			db += sd;
			dg += sdx;
			if (!in)
				continue;
			const float c = gamma[j] * is / n;
			for (int i = lo + ty; i < hi; i += lanes) {
				const size_t at = (size_t)i * cols + j;
				const float xhat = (x[at] - m) * is;
				dx[at] = c * (n * dy[at] - sd - xhat * sdx);
			}
		}
		if (in && ty == 0) {
			dgamma[j] = dg;
			dbeta[j] = db;
		}
	}
}
