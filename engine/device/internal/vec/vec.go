// Package vec is the CPU device's elementwise loops over float32 slices,
// in AVX2 assembly on amd64 (vec_amd64.s) and plain Go elsewhere, where
// the CPU lacks AVX2, or in a build with -tags purego. Both give the same
// bits: the assembly does the Go code's operations, in the same order,
// eight elements at a time, without fusing a multiply and an add; each
// function runs the assembly on the longest multiple of eight elements and
// its Go loop (the ...Go functions) on the rest.
//
// Go does not vectorize loops, and these passes run over every activation
// and parameter at every step: in plain Go they were a third of a batch-32
// training step.
package vec

import "math"

// MomentumSGD updates w and v the way PyTorch's SGD does, with subnormal
// results flushed to zero: v = ftz(momentum·v + (g + weightDecay·w)),
// w = w − ftz(lr·v). g and v must be at least as long as w.
//
// The velocity of a weight whose gradient is zero (a pixel that is blank
// in every image) decays by the momentum at every step, through the
// subnormal range, where each x86 operation on it takes 60× as long;
// flushing, which TensorFlow sets the CPU to do for the same reason (Go
// cannot set the FPU's mode), keeps the update out of it.
func MomentumSGD(w, g, v []float32, lr, momentum, weightDecay float32) {
	g, v = g[:len(w)], v[:len(w)]
	n := 0
	if haveAVX2 {
		n = len(w) &^ 7
		if n > 0 {
			momentumAVX2(&w[0], &g[0], &v[0], n, lr, momentum, weightDecay)
		}
	}
	momentumGo(w[n:], g[n:], v[n:], lr, momentum, weightDecay)
}

func momentumGo(w, g, v []float32, lr, momentum, weightDecay float32) {
	for i := range w {
		// The conversions round each product, as the assembly does: without
		// them the compiler may fuse a multiply and an add (GOAMD64=v3).
		wi := w[i]
		vi := ftz(float32(momentum*v[i]) + (g[i] + float32(weightDecay*wi)))
		v[i] = vi
		w[i] = wi - ftz(float32(lr*vi))
	}
}

// ftz flushes a subnormal x to zero, keeping its sign.
func ftz(x float32) float32 {
	if b := math.Float32bits(x); b&0x7f800000 == 0 {
		return math.Float32frombits(b & 0x80000000)
	}
	return x
}

// ReLU sets y[i] = max(x[i], 0) (Go's max: NaN stays NaN, −0 becomes +0).
// x must be at least as long as y.
func ReLU(y, x []float32) {
	x = x[:len(y)]
	n := 0
	if haveAVX2 {
		n = len(y) &^ 7
		if n > 0 {
			reluAVX2(&y[0], &x[0], n)
		}
	}
	reluGo(y[n:], x[n:])
}

func reluGo(y, x []float32) {
	for i := range y {
		y[i] = max(x[i], 0)
	}
}

// ReLUBackward sets dx[i] = dy[i] where y[i] > 0 and +0 elsewhere (NaN
// included). dy and y must be at least as long as dx.
func ReLUBackward(dx, dy, y []float32) {
	dy, y = dy[:len(dx)], y[:len(dx)]
	n := 0
	if haveAVX2 {
		n = len(dx) &^ 7
		if n > 0 {
			reluBackwardAVX2(&dx[0], &dy[0], &y[0], n)
		}
	}
	reluBackwardGo(dx[n:], dy[n:], y[n:])
}

func reluBackwardGo(dx, dy, y []float32) {
	for i := range dx {
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & positiveMask(y[i]))
	}
}

// positiveMask is all ones when v > 0 and zero otherwise (for −0 and NaN
// too), without a branch: y > 0 is a coin toss after a ReLU, and a
// mispredicted branch per element made the loop ten times slower. The
// floats v > 0 are those whose bits b lie in [1, 0x7f800000] (+Inf
// included), so b−1 < 0x7f800000, compared as unsigned, decides it.
func positiveMask(v float32) uint32 {
	u := math.Float32bits(v) - 1
	return uint32((int64(u) - 0x7f800000) >> 63)
}

// Add sets dst[i] += src[i]. src must be at least as long as dst.
func Add(dst, src []float32) {
	src = src[:len(dst)]
	n := 0
	if haveAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			addAVX2(&dst[0], &src[0], n)
		}
	}
	addGo(dst[n:], src[n:])
}

func addGo(dst, src []float32) {
	for i := range dst {
		dst[i] += src[i]
	}
}

// AddRows adds rows rows of width floats, src's r-th at r·srcStride, into
// dst's, the r-th at r·dstStride: Add on each pair of rows, in one call.
// Col2Im adds rows of 10 floats (LeNet-5's second conv), where a call per
// row cost more than the adds: it ran 3× faster so.
func AddRows(dst []float32, dstStride int, src []float32, srcStride, rows, width int) {
	if !rowsFit(dst, dstStride, src, srcStride, rows, width) {
		return
	}
	if haveAVX2 {
		addRowsAVX2(&dst[0], dstStride, &src[0], srcStride, rows, width)
		return
	}
	for r := range rows {
		addGo(dst[r*dstStride:][:width], src[r*srcStride:][:width])
	}
}

// CopyRows is AddRows's copy: each row of dst set to its row of src (the
// rows of dst must not overlap src's). Im2Col's rows, as Col2Im's.
func CopyRows(dst []float32, dstStride int, src []float32, srcStride, rows, width int) {
	if !rowsFit(dst, dstStride, src, srcStride, rows, width) {
		return
	}
	if haveAVX2 {
		copyRowsAVX2(&dst[0], dstStride, &src[0], srcStride, rows, width)
		return
	}
	for r := range rows {
		copy(dst[r*dstStride:][:width], src[r*srcStride:][:width])
	}
}

// rowsFit reports whether there are rows to do, and panics, as an index
// out of range, where dst or src is too short for them.
func rowsFit(dst []float32, dstStride int, src []float32, srcStride, rows, width int) bool {
	if rows <= 0 || width <= 0 {
		return false
	}
	_, _ = dst[(rows-1)*dstStride+width-1], src[(rows-1)*srcStride+width-1]
	return true
}

// Normalize sets dst[i] = scale·float32(src[i]) + shift, rounding the
// product (no fused multiply-add). src must be at least as long as dst.
func Normalize(dst []float32, src []uint8, scale, shift float32) {
	src = src[:len(dst)]
	n := 0
	if haveAVX2 {
		n = len(dst) &^ 7
		if n > 0 {
			normalizeAVX2(&dst[0], &src[0], n, scale, shift)
		}
	}
	normalizeGo(dst[n:], src[n:], scale, shift)
}

func normalizeGo(dst []float32, src []uint8, scale, shift float32) {
	for i := range dst {
		dst[i] = float32(scale*float32(src[i])) + shift
	}
}

// MaxPool2x2 pools a pair of rows, r0 above r1, in 2×2 windows at stride
// 2: window x's largest of r0[2x], r0[2x+1], r1[2x], r1[2x+1], the first
// of equals (−0 equal to +0), into y[x], and its index into arg[x]:
// at + 2x, plus 1, wd or wd+1 (at is r0[0]'s index in the image, wd the
// row length). It does a prefix of the windows, eight at a time (the last
// eight again, overlapping, for a row of 8 or more that is not a multiple
// of 8; a row of 4 to 7 as two blocks of four, overlapping), up to the
// first block holding a NaN, and returns how many it did; the caller does
// the rest (all of them without AVX2 or in a row of fewer than 4), NaNs as
// it wants them. r0 and r1 must hold 2·len(y) floats, arg len(y) ints.
//
// Pooling is a compare and a select per element; in Go, which has no
// vector instructions, the CPU device's 2×2 pooling ran at 2 GB/s, longer
// than LeNet-5's second convolution's GEMM.
func MaxPool2x2(y []float32, arg []int32, r0, r1 []float32, at, wd int32) int {
	n := len(y)
	if !haveAVX2 || n < 4 {
		return 0
	}
	_, _, _ = arg[n-1], r0[2*n-1], r1[2*n-1]
	if n < 8 {
		last := n - 4
		switch {
		case !maxPool2x2x4AVX(&y[0], &arg[0], &r0[0], &r1[0], at, wd):
			return 0
		case !maxPool2x2x4AVX(&y[last], &arg[last], &r0[2*last], &r1[2*last], at+int32(2*last), wd):
			return 4
		}
		return n
	}
	done := maxPool2x2AVX2(&y[0], &arg[0], &r0[0], &r1[0], n&^7, at, wd)
	if done == n&^7 && done < n {
		last := n - 8
		if maxPool2x2AVX2(&y[last], &arg[last], &r0[2*last], &r1[2*last], 8, at+int32(2*last), wd) == 8 {
			done = n
		}
	}
	return done
}
