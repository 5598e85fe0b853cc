package device

import (
	"fmt"
	"math"

	"github.com/batchlab/batchlab/engine/device/internal/vec"
)

// Convolution data movement on the CPU (Convolver): plain loops, split
// across the device's goroutines by independent output blocks (cpu_pool.go),
// so the results do not depend on the split.

var _ Convolver = (*CPU)(nil)

// convTasks are the CPU device's convolution passes, one each, kept so that
// a call allocates nothing.
type convTasks struct {
	im2col   im2colTask
	col2im   col2imTask
	swap     swapTask
	pool     poolTask
	poolBack poolBackTask
}

// convPart is the fewest elements a part of a data-movement pass writes:
// below it, handing a part to another goroutine costs more than it saves.
const convPart = 16 << 10

// convBufs checks a convolution call's shape and buffers.
func (d *CPU) convBufs(op string, shapeErr error, args ...arg) ([maxArgs]*cpuBuffer, bool) {
	if shapeErr != nil && !d.failed() {
		d.fail(fmt.Errorf("%s: %w", op, shapeErr))
	}
	return d.bufs(op, nil, args...)
}

// im2colTask's units are the (row of col, image) pairs: each writes OH·OW
// contiguous elements of col.
type im2colTask struct {
	col, x []float32
	s      ConvShape
}

func (t *im2colTask) run(part, parts int) {
	s := t.s
	oh, ow, cols := s.OutH(), s.OutW(), s.ColCols()
	lo, hi := span(s.ColRows()*s.N, part, parts, 1)
	for u := lo; u < hi; u++ {
		row, n := u/s.N, u%s.N
		c, i, j := row/(s.KH*s.KW), row/s.KW%s.KH, row%s.KW
		out := t.col[row*cols+n*oh*ow:][:oh*ow]
		plane := t.x[s.plane(n, c)*s.H*s.W:][:s.H*s.W]
		y0, y1 := inImage(i, s.Stride, s.Pad, s.H, oh)
		x0, x1 := inImage(j, s.Stride, s.Pad, s.W, ow)
		clear(out[:y0*ow])
		if s.Stride == 1 {
			// Padding's zeros at the ends of the rows, then the rows.
			if x0 > 0 || x1 < ow {
				for o := y0 * ow; o < y1*ow; o += ow {
					clear(out[o : o+x0])
					clear(out[o+x1 : o+ow])
				}
			}
			if y1 > y0 {
				vec.CopyRows(out[y0*ow+x0:], ow, plane[(y0-s.Pad+i)*s.W+x0-s.Pad+j:], s.W, y1-y0, x1-x0)
			}
		} else {
			for y := y0; y < y1; y++ {
				dst := out[y*ow:][:ow]
				src := plane[(y*s.Stride-s.Pad+i)*s.W:][:s.W]
				clear(dst[:x0])
				for x := x0; x < x1; x++ {
					dst[x] = src[x*s.Stride-s.Pad+j]
				}
				clear(dst[x1:])
			}
		}
		clear(out[y1*ow:])
	}
}

// inImage is the outputs [lo, hi) along one axis whose input position
// o·stride − pad + k, for kernel offset k, lies inside [0, size).
func inImage(k, stride, pad, size, out int) (lo, hi int) {
	if q := pad - k; q > 0 {
		lo = (q + stride - 1) / stride
	}
	if q := size - 1 + pad - k; q >= 0 {
		hi = min(out, q/stride+1)
	}
	return min(lo, out), max(hi, min(lo, out))
}

func (d *CPU) Im2Col(col, x Buffer, s ConvShape) {
	err := s.Validate()
	rows, cols := 0, 0
	if err == nil {
		rows, cols = s.ColRows(), s.ColCols()
	}
	bs, ok := d.convBufs("Im2Col", err, f32("col", col, rows*cols), f32("x", x, s.N*s.C*s.H*s.W))
	if !ok {
		return
	}
	d.tasks.conv.im2col = im2colTask{bs[0].f32, bs[1].f32, s}
	run(d, partsFor(rows*cols, convPart), &d.tasks.conv.im2col)
}

// col2imTask's units are the planes of dx, in storage order: each part
// zeroes its planes and adds into them the col entries read from them, in
// the order every device uses (conv.go).
type col2imTask struct {
	dx, col []float32
	s       ConvShape
}

func (t *col2imTask) run(part, parts int) {
	s := t.s
	oh, ow, cols := s.OutH(), s.OutW(), s.ColCols()
	lo, hi := span(s.N*s.C, part, parts, 1)
	for u := lo; u < hi; u++ {
		n, c := s.imageChannel(u)
		plane := t.dx[u*s.H*s.W:][:s.H*s.W]
		clear(plane)
		for i := range s.KH {
			y0, y1 := inImage(i, s.Stride, s.Pad, s.H, oh)
			for j := range s.KW {
				x0, x1 := inImage(j, s.Stride, s.Pad, s.W, ow)
				row := (c*s.KH+i)*s.KW + j
				src := t.col[row*cols+n*oh*ow:][:oh*ow]
				if s.Stride == 1 {
					if y1 > y0 {
						vec.AddRows(plane[(y0-s.Pad+i)*s.W+x0-s.Pad+j:], s.W, src[y0*ow+x0:], ow, y1-y0, x1-x0)
					}
					continue
				}
				for y := y0; y < y1; y++ {
					dst := plane[(y*s.Stride-s.Pad+i)*s.W:][:s.W]
					in := src[y*ow:][:ow]
					for x := x0; x < x1; x++ {
						dst[x*s.Stride-s.Pad+j] += in[x]
					}
				}
			}
		}
	}
}

func (d *CPU) Col2Im(dx, col Buffer, s ConvShape) {
	err := s.Validate()
	rows, cols := 0, 0
	if err == nil {
		rows, cols = s.ColRows(), s.ColCols()
	}
	n := s.N * s.C * s.H * s.W
	bs, ok := d.convBufs("Col2Im", err, f32("dx", dx, n), f32("col", col, rows*cols))
	if !ok {
		return
	}
	d.tasks.conv.col2im = col2imTask{bs[0].f32, bs[1].f32, s}
	run(d, partsFor(n+rows*cols, convPart), &d.tasks.conv.col2im)
}

// swapTask's units are the (o, j) blocks of dst, each a×inner contiguous
// elements.
type swapTask struct {
	dst, src           []float32
	outer, a, b, inner int
}

func (t *swapTask) run(part, parts int) {
	lo, hi := span(t.outer*t.b, part, parts, 1)
	for u := lo; u < hi; u++ {
		o, j := u/t.b, u%t.b
		dst := t.dst[u*t.a*t.inner:][:t.a*t.inner]
		src := t.src[(o*t.a*t.b+j)*t.inner:]
		if t.inner == 1 {
			for i := range dst {
				dst[i] = src[i*t.b]
			}
			continue
		}
		for i := range t.a {
			copy(dst[i*t.inner:][:t.inner], src[i*t.b*t.inner:][:t.inner])
		}
	}
}

func (d *CPU) SwapAxes(dst, src Buffer, outer, a, b, inner int) {
	n, err := swapSizes(outer, a, b, inner)
	if err != nil {
		d.fail(err)
		return
	}
	bs, ok := d.bufs("SwapAxes", nil, f32("dst", dst, n), f32("src", src, n))
	if !ok {
		return
	}
	d.tasks.conv.swap = swapTask{bs[0].f32, bs[1].f32, outer, a, b, inner}
	run(d, partsFor(n, convPart), &d.tasks.conv.swap)
}

// poolTask's units are the (image, channel) planes of y.
type poolTask struct {
	y      []float32
	argmax []int32
	x      []float32
	s      PoolShape
}

func (t *poolTask) run(part, parts int) {
	s := t.s
	oh, ow := s.OutH(), s.OutW()
	lo, hi := span(s.N*s.C, part, parts, 1)
	if s.halves() {
		t.run2x2(lo, hi)
		return
	}
	for u := lo; u < hi; u++ {
		base := u * s.H * s.W
		plane := t.x[base:][:s.H*s.W]
		for y := range oh {
			h0, h1 := window(y, s.K, s.Stride, s.Pad, s.H)
			for x := range ow {
				w0, w1 := window(x, s.K, s.Stride, s.Pad, s.W)
				at := h0*s.W + w0
				key, nan := orderKey(plane[at])
				for h := h0; h < h1; h++ {
					for w, v := range plane[h*s.W:][w0:w1] {
						// Integers, so that the compiler makes it a
						// conditional move: a branch on random data
						// mispredicts half the time.
						k, n := orderKey(v)
						if k > key {
							key, at = k, h*s.W+w0+w
						}
						nan |= n
					}
				}
				if nan != 0 {
					at = firstNaN(plane, h0, h1, w0, w1, s.W, at)
				}
				best := plane[at]
				o := (u*oh+y)*ow + x
				t.y[o], t.argmax[o] = best, int32(base+at)
			}
		}
	}
}

// run2x2 is run for the pooling every model here uses, 2×2 windows at
// stride 2 without padding: eight windows at a time in AVX2
// (vec.MaxPool2x2), the rest of a row unrolled. The general loop's
// bookkeeping per window made it about three times slower (6.7 against 2.0
// ns per input element, cnn:32,64's first pooling at batch 128, one
// thread, measured side by side on the loaded reference machine). Same
// results, NaNs included.
func (t *poolTask) run2x2(lo, hi int) {
	s := t.s
	oh, ow, wd := s.OutH(), s.OutW(), s.W
	for u := lo; u < hi; u++ {
		base := u * s.H * wd
		for y := range oh {
			top := base + 2*y*wd
			r0, r1 := t.x[top:][:2*ow], t.x[top+wd:][:2*ow]
			ys, as := t.y[(u*oh+y)*ow:][:ow], t.argmax[(u*oh+y)*ow:][:ow]
			for x := vec.MaxPool2x2(ys, as, r0, r1, int32(top), int32(wd)); x < ow; x++ {
				at := top + 2*x
				key, nan := orderKey(r0[2*x])
				k, n := orderKey(r0[2*x+1])
				key, at = larger(key, at, k, top+2*x+1)
				nan |= n
				k, n = orderKey(r1[2*x])
				key, at = larger(key, at, k, top+wd+2*x)
				nan |= n
				k, n = orderKey(r1[2*x+1])
				_, at = larger(key, at, k, top+wd+2*x+1)
				if nan|n != 0 {
					at = base + firstNaN(t.x[base:], 2*y, 2*y+2, 2*x, 2*x+2, wd, at-base)
				}
				ys[x], as[x] = t.x[at], int32(at)
			}
		}
	}
}

// larger is (k, at2) if k > key, else (key, at), without a branch: the
// compiler made branches of the ifs, and on real maps which of four
// neighbours is largest is a coin toss, mispredicted half the time (7 ns
// per element, LeNet-5's second pooling).
func larger(key int32, at int, k int32, at2 int) (int32, int) {
	take := int32((int64(key) - int64(k)) >> 63) // all ones if k > key
	return key ^ (key^k)&take, at ^ (at^at2)&int(take)
}

// halves reports whether s is the pooling every model here uses, 2×2
// windows at stride 2 without padding, which both passes run their own
// way (run2x2).
func (s PoolShape) halves() bool { return s.K == 2 && s.Stride == 2 && s.Pad == 0 }

// orderKey maps a float32 to an int32 in the same order (−0 equal to +0),
// and n to 1 for a NaN, 0 otherwise.
func orderKey(v float32) (key, n int32) {
	b := math.Float32bits(v)
	mag, sign := int32(b&0x7fffffff), int32(b)>>31
	return (mag ^ sign) - sign, int32(uint32(0x7f800000-mag) >> 31)
}

// firstNaN is the index of the first NaN of a window, at if it has none.
func firstNaN(plane []float32, h0, h1, w0, w1, width, at int) int {
	for h := h0; h < h1; h++ {
		for w := w0; w < w1; w++ {
			if v := plane[h*width+w]; v != v {
				return h*width + w
			}
		}
	}
	return at
}

// window is the part of the image [lo, hi) that window number o covers
// along one axis: never empty, since the padding is at most half a window.
func window(o, k, stride, pad, size int) (lo, hi int) {
	start := o*stride - pad
	return max(start, 0), min(start+k, size)
}

func (d *CPU) MaxPool(y, argmax, x Buffer, s PoolShape) {
	err := s.Validate()
	out := 0
	if err == nil {
		out = s.N * s.C * s.OutH() * s.OutW()
	}
	bs, ok := d.convBufs("MaxPool", err, f32("y", y, out), i32("argmax", argmax, out), f32("x", x, s.N*s.C*s.H*s.W))
	if !ok {
		return
	}
	d.tasks.conv.pool = poolTask{bs[0].f32, bs[1].i32, bs[2].f32, s}
	run(d, partsFor(s.N*s.C*s.H*s.W, convPart), &d.tasks.conv.pool)
}

// poolBackTask's units are the (image, channel) planes of dx: each part
// zeroes its planes, then adds each window's dy at its argmax, windows in
// ascending order, as the gather of other devices does (conv.go). An argmax
// outside its window adds nothing, as there.
type poolBackTask struct {
	dx, dy []float32
	argmax []int32
	s      PoolShape
}

func (t *poolBackTask) run(part, parts int) {
	s := t.s
	oh, ow := s.OutH(), s.OutW()
	lo, hi := span(s.N*s.C, part, parts, 1)
	if s.halves() {
		t.run2x2(lo, hi)
		return
	}
	for u := lo; u < hi; u++ {
		base := u * s.H * s.W
		plane := t.dx[base:][:s.H*s.W]
		clear(plane)
		for y := range oh {
			h0, h1 := window(y, s.K, s.Stride, s.Pad, s.H)
			for x := range ow {
				w0, w1 := window(x, s.K, s.Stride, s.Pad, s.W)
				o := (u*oh+y)*ow + x
				a := int(t.argmax[o]) - base
				if h := a / s.W; a >= 0 && h >= h0 && h < h1 && a-h*s.W >= w0 && a-h*s.W < w1 {
					plane[a] += t.dy[o]
				}
			}
		}
	}
}

// run2x2 is run for 2×2 windows at stride 2 without padding, as
// poolTask's: an argmax is in its window when it is one of the window's
// four positions, which needs no division (the general loop's window
// bounds and division were 8% of a LeNet-5 step at batch 32).
func (t *poolBackTask) run2x2(lo, hi int) {
	s := t.s
	oh, ow, wd := s.OutH(), s.OutW(), s.W
	for u := lo; u < hi; u++ {
		base := u * s.H * wd
		plane := t.dx[base:][:s.H*wd]
		clear(plane)
		for y := range oh {
			o := (u*oh + y) * ow
			dys, as := t.dy[o:][:ow], t.argmax[o:][:ow]
			for x, a := range as {
				at := 2*y*wd + 2*x // the window's first position in the plane
				// d is 0, 1, wd or wd+1; one test (min is branch-free), as a
				// chain of ||s mispredicts on which of the four it is.
				if d := int(a) - base - at; min(uint(d), uint(d-wd)) <= 1 {
					plane[at+d] += dys[x]
				}
			}
		}
	}
}

func (d *CPU) MaxPoolBackward(dx, dy, argmax Buffer, s PoolShape) {
	err := s.Validate()
	out := 0
	if err == nil {
		out = s.N * s.C * s.OutH() * s.OutW()
	}
	n := s.N * s.C * s.H * s.W
	bs, ok := d.convBufs("MaxPoolBackward", err, f32("dx", dx, n), f32("dy", dy, out), i32("argmax", argmax, out))
	if !ok {
		return
	}
	d.tasks.conv.poolBack = poolBackTask{bs[0].f32, bs[1].f32, bs[2].i32, s}
	run(d, partsFor(n, convPart), &d.tasks.conv.poolBack)
}
