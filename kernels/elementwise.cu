// Elementwise kernels: one thread per element in a grid-stride loop, so any
// grid size covers any n (the device caps the grid; see gridFor in
// engine/device/launch.go). Indices are unsigned: n fits an int (the device
// checks), and i + stride stays below 2^32.
//
// Each kernel's semantics are those of the CPU device (engine/device/cpu.go).
#include "common.cuh"

// x[i,j] += bias[j] for a rows×cols x; n = rows·cols.
extern "C" __global__ void add_bias(float *x, const float *bias, int n, int cols) {
	BL_FOR(i, n) x[i] += bias[i % (unsigned)cols];
}

// y = max(x, 0) as Go's max has it: NaN stays NaN, -0 becomes 0.
extern "C" __global__ void relu(float *y, const float *x, int n) {
	BL_FOR(i, n) {
		float v = x[i];
		y[i] = (v > 0.0f || v != v) ? v : 0.0f;
	}
}

// dx = dy where y > 0, else 0. dx may be dy.
extern "C" __global__ void relu_backward(float *dx, const float *dy, const float *y, int n) {
	BL_FOR(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// PyTorch's SGD: v = momentum·v + (g + weight_decay·w); w -= lr·v. Nothing
// when the guard (null: none) is set: softmax_xent saw a non-finite loss.
extern "C" __global__ void momentum_sgd(float *w, const float *g, float *v, int n, float lr, float momentum,
                                        float weight_decay, const int *guard) {
	if (guard && *guard)
		return;
	BL_FOR(i, n) {
		float vi = momentum * v[i] + (g[i] + weight_decay * w[i]);
		v[i] = vi;
		w[i] -= lr * vi;
	}
}

// PyTorch's Adam and AdamW, with the step's bias corrections folded in on
// the host (engine/device/adam.go), and 1 − β in float64: Adam has l2 = weight_decay, decay = 1;
// AdamW l2 = 0, decay = 1 − lr·weight_decay. Nothing when the guard (null:
// none) is set.
extern "C" __global__ void adam(float *w, const float *g, float *m, float *v, int n, float beta1,
                                float one_minus_beta1, float beta2, float one_minus_beta2, float eps, float l2, float decay, float step_size, float bias_correction2_sqrt,
                                const int *guard) {
	if (guard && *guard)
		return;
	BL_FOR(i, n) {
		float gi = g[i] + l2 * w[i];
		float mi = beta1 * m[i] + one_minus_beta1 * gi;
		float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
		m[i] = mi;
		v[i] = vi;
		w[i] = decay * w[i] - step_size * mi / (sqrtf(vi) / bias_correction2_sqrt + eps);
	}
}

// dst = scale·src + shift, uint8 to float32.
extern "C" __global__ void normalize_bytes(float *dst, const unsigned char *src, int n, float scale, float shift) {
	BL_FOR(i, n) dst[i] = scale * (float)src[i] + shift;
}

// dst[r,:] = src[idx[r],:] over n = rows·row_len elements of one type. An
// index outside [0, src_rows) is reported in err and its row left alone.
#define BL_GATHER                                                       \
	BL_FOR(i, n) {                                                      \
		unsigned r = i / (unsigned)row_len, c = i % (unsigned)row_len; \
		int k = idx[r];                                                 \
		if (k < 0 || k >= src_rows) {                                   \
			if (c == 0)                                                 \
				bl_report(err, BL_ERR_INDEX, k, (int)r, src_rows);      \
			continue;                                                   \
		}                                                               \
		dst[i] = src[(size_t)k * (unsigned)row_len + c];               \
	}

// 4-byte elements: float32 rows, and uint8 rows whose length is a multiple
// of 4 (copied as words, a quarter of the loads and stores).
extern "C" __global__ void gather_rows_u32(unsigned *dst, const unsigned *src, const int *idx, int n, int row_len,
                                           int src_rows, int *err) {
	BL_GATHER
}

// Other uint8 rows, byte by byte.
extern "C" __global__ void gather_rows_u8(unsigned char *dst, const unsigned char *src, const int *idx, int n,
                                          int row_len, int src_rows, int *err) {
	BL_GATHER
}
