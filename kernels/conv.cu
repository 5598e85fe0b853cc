// The data movement of convolutions and pooling over float32 batches of
// NCHW images, or CNHW with channel_major (engine/device/conv.go):
// one thread per output element in a grid-stride loop (as in
// elementwise.cu), so every write is a plain store and no two threads write
// one element. The backward passes are gathers: each input position sums
// what reads it, in the order the CPU device adds it (kernel offset, then
// window, ascending), so the results are deterministic and need no atomics.
//
// Each kernel's semantics are those of the CPU device
// (engine/device/cpu_conv.go); the device checks the shapes. Indices are
// unsigned: every buffer's length fits an int (the device checks).
#include "common.cuh"

// bl_plane is the index of image img's channel ch among the n·c planes.
static __device__ __forceinline__ unsigned bl_plane(int img, int ch, int n, int c, int channel_major) {
	return channel_major ? (unsigned)ch * n + img : (unsigned)img * c + ch;
}

// col[(ch·kh+i)·kw+j, (img·oh+y)·ow+xo] = x[img, ch, y·stride−pad+i, xo·stride−pad+j],
// 0 outside the image; total = c·kh·kw · n·oh·ow.
extern "C" __global__ void im2col(float *col, const float *x, int total, int n, int c, int h, int w, int kh, int kw,
                                  int stride, int pad, int oh, int ow, int channel_major) {
	const unsigned cols = (unsigned)n * oh * ow;
	BL_FOR(e, total) {
		const unsigned row = e / cols, q = e % cols;
		const int img = q / (oh * ow), r = q % (oh * ow);
		const int ch = row / (kh * kw), i = row / kw % kh, j = row % kw;
		const int hh = r / ow * stride - pad + i, ww = r % ow * stride - pad + j;
		col[e] = (hh >= 0 && hh < h && ww >= 0 && ww < w) ? x[(bl_plane(img, ch, n, c, channel_major) * h + hh) * w + ww] : 0.0f;
	}
}

// dx[img, ch, hh, ww] = the sum of the col entries im2col copies from it;
// total = n·c·h·w.
extern "C" __global__ void col2im(float *dx, const float *col, int total, int n, int c, int h, int w, int kh, int kw,
                                  int stride, int pad, int oh, int ow, int channel_major) {
	const unsigned cols = (unsigned)n * oh * ow;
	BL_FOR(e, total) {
		const int ww = e % w, hh = e / w % h;
		const unsigned plane = e / ((unsigned)w * h);
		const int ch = channel_major ? plane / n : plane % c, img = channel_major ? plane % n : plane / c;
		float sum = 0.0f;
		for (int i = 0; i < kh; i++) {
			const int ty = hh + pad - i; // y·stride for the output row that reads it
			if (ty < 0)
				break;
			const int y = ty / stride;
			if (ty % stride != 0 || y >= oh)
				continue;
			for (int j = 0; j < kw; j++) {
				const int tx = ww + pad - j;
				if (tx < 0)
					break;
				const int xo = tx / stride;
				if (tx % stride != 0 || xo >= ow)
					continue;
				sum += col[(unsigned)((ch * kh + i) * kw + j) * cols + (unsigned)(img * oh + y) * ow + xo];
			}
		}
		dx[e] = sum;
	}
}

// dst[o, j, i, k] = src[o, i, j, k] for src of outer×a×b×inner; total =
// outer·a·b·inner.
extern "C" __global__ void swap_axes(float *dst, const float *src, int total, int a, int b, int inner) {
	BL_FOR(e, total) {
		const unsigned k = e % inner, t = e / inner, i = t % a, j = t / a % b, o = t / a / b;
		dst[e] = src[((o * a + i) * b + j) * inner + k];
	}
}

// bl_window is the part [lo, hi) of an axis of size that window o covers.
static __device__ __forceinline__ void bl_window(int o, int k, int stride, int pad, int size, int *lo, int *hi) {
	const int start = o * stride - pad;
	*lo = start > 0 ? start : 0;
	*hi = start + k < size ? start + k : size;
}

// y and argmax (flat in x) of each k×k window's first largest element in
// the image, the first NaN if any; total = n·c·oh·ow.
extern "C" __global__ void maxpool(float *y, int *argmax, const float *x, int total, int h, int w, int k, int stride,
                                   int pad, int oh, int ow) {
	BL_FOR(e, total) {
		const int xo = e % ow, yo = e / ow % oh;
		const unsigned base = e / ((unsigned)ow * oh) * h * w;
		int h0, h1, w0, w1;
		bl_window(yo, k, stride, pad, h, &h0, &h1);
		bl_window(xo, k, stride, pad, w, &w0, &w1);
		unsigned at = base + h0 * w + w0;
		float best = x[at];
		for (int hh = h0; hh < h1; hh++)
			for (int ww = w0; ww < w1; ww++) {
				const unsigned p = base + hh * w + ww;
				const float v = x[p];
				if (v > best || (v != v && best == best)) {
					best = v;
					at = p;
				}
			}
		y[e] = best;
		argmax[e] = (int)at;
	}
}

// dx at each input position: the sum of dy over the windows covering it
// whose argmax it is, windows in ascending order; total = n·c·h·w.
extern "C" __global__ void maxpool_backward(float *dx, const float *dy, const int *argmax, int total, int h, int w,
                                            int k, int stride, int pad, int oh, int ow) {
	BL_FOR(e, total) {
		const int ww = e % w, hh = e / w % h;
		const unsigned plane = e / ((unsigned)w * h);
		// The windows o with o·stride − pad ≤ p < o·stride − pad + k.
		const int qy = hh + pad - k + 1, qx = ww + pad - k + 1;
		const int y0 = qy > 0 ? (qy + stride - 1) / stride : 0, x0 = qx > 0 ? (qx + stride - 1) / stride : 0;
		const int ty = (hh + pad) / stride + 1, tx = (ww + pad) / stride + 1;
		const int y1 = ty < oh ? ty : oh, x1 = tx < ow ? tx : ow;
		float sum = 0.0f;
		for (int yo = y0; yo < y1; yo++)
			for (int xo = x0; xo < x1; xo++) {
				const unsigned o = (plane * oh + yo) * ow + xo;
				if ((unsigned)argmax[o] == e)
					sum += dy[o];
			}
		dx[e] = sum;
	}
}
