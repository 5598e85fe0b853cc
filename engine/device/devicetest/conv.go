package devicetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

// convolver returns d as a device.Convolver: every device of package device
// implements it, so one that does not fails rather than skips.
func convolver(t *testing.T, d device.Device) device.Convolver {
	t.Helper()
	c, ok := d.(device.Convolver)
	if !ok {
		t.Fatalf("the %s device does not implement device.Convolver", d.Info().Kind)
	}
	return c
}

// convCheck opens what a convolution check works on: a device, it as a
// device.Convolver, and the check's own random numbers.
func convCheck(t *testing.T, newDevice NewDevice, seed uint64) (device.Device, device.Convolver, *rand.Rand) {
	t.Helper()
	d := newDevice(t)
	return d, convolver(t, d), rng(seed)
}

// convShapes are awkward convolutions: odd sizes, strides 1 to 3, padding 0
// to 2, one channel, one row, a kernel as large as the image, LeNet-5's
// first layer; and those of several images and channels again on
// channel-major images.
func convShapes() []device.ConvShape {
	shapes := nchwConvShapes()
	for _, s := range shapes {
		if s.N > 1 && s.C > 1 {
			s.ChannelMajor = true
			shapes = append(shapes, s)
		}
	}
	return shapes
}

// at is the index of x[n, c, h, w] in the images of s, NCHW or CNHW.
func at(s device.ConvShape, n, c, h, w int) int {
	plane := n*s.C + c
	if s.ChannelMajor {
		plane = c*s.N + n
	}
	return (plane*s.H+h)*s.W + w
}

func nchwConvShapes() []device.ConvShape {
	return []device.ConvShape{
		{N: 1, C: 1, H: 1, W: 1, KH: 1, KW: 1, Stride: 1, Pad: 0},
		{N: 2, C: 3, H: 7, W: 5, KH: 3, KW: 3, Stride: 1, Pad: 0},
		{N: 2, C: 3, H: 7, W: 5, KH: 3, KW: 3, Stride: 1, Pad: 1},
		{N: 2, C: 2, H: 1, W: 6, KH: 3, KW: 3, Stride: 1, Pad: 1},
		{N: 2, C: 2, H: 6, W: 4, KH: 5, KW: 3, Stride: 1, Pad: 1},
		{N: 3, C: 2, H: 9, W: 8, KH: 3, KW: 2, Stride: 2, Pad: 2},
		{N: 1, C: 2, H: 4, W: 4, KH: 3, KW: 3, Stride: 2, Pad: 2},
		{N: 1, C: 1, H: 5, W: 5, KH: 5, KW: 5, Stride: 1, Pad: 0},
		{N: 2, C: 2, H: 3, W: 3, KH: 5, KW: 5, Stride: 1, Pad: 1},
		{N: 2, C: 1, H: 1, W: 9, KH: 1, KW: 3, Stride: 1, Pad: 0},
		{N: 2, C: 3, H: 1, W: 9, KH: 3, KW: 3, Stride: 2, Pad: 1},
		{N: 2, C: 3, H: 11, W: 13, KH: 4, KW: 3, Stride: 3, Pad: 1},
		{N: 3, C: 1, H: 28, W: 28, KH: 5, KW: 5, Stride: 1, Pad: 2},
	}
}

// taps calls f with every entry of the im2col matrix that holds an input
// element (the padding's hold zero) and the index of that element:
// Im2Col's definition, one element at a time, which both references read.
func taps(s device.ConvShape, f func(col, x int)) {
	oh, ow := s.OutH(), s.OutW()
	for c := range s.C {
		for i := range s.KH {
			for j := range s.KW {
				row := (c*s.KH+i)*s.KW + j
				for n := range s.N {
					for y := range oh {
						for xo := range ow {
							h, w := y*s.Stride-s.Pad+i, xo*s.Stride-s.Pad+j
							if h >= 0 && h < s.H && w >= 0 && w < s.W {
								f(row*s.ColCols()+(n*oh+y)*ow+xo, at(s, n, c, h, w))
							}
						}
					}
				}
			}
		}
	}
}

// im2colRef is what Im2Col writes: each input element at its taps.
func im2colRef(x []float32, s device.ConvShape) []float64 {
	col := make([]float64, s.ColRows()*s.ColCols())
	taps(s, func(c, xi int) { col[c] = float64(x[xi]) })
	return col
}

// col2imRef adds every col entry into the input position Im2Col read it from.
func col2imRef(col []float32, s device.ConvShape) []float64 {
	dx := make([]float64, s.N*s.C*s.H*s.W)
	taps(s, func(c, xi int) { dx[xi] += float64(col[c]) })
	return dx
}

func dot(a []float32, b []float32) (sum, scale float64) {
	for i := range a {
		sum += float64(a[i]) * float64(b[i])
		scale += math.Abs(float64(a[i]) * float64(b[i]))
	}
	return sum, scale
}

// checkIm2Col checks Im2Col and Col2Im against their definitions, and that
// they are adjoint: ⟨Im2Col(x), c⟩ = ⟨x, Col2Im(c)⟩, in float64.
func checkIm2Col(t *testing.T, newDevice NewDevice) {
	d, cv, r := convCheck(t, newDevice, 21)
	for _, s := range convShapes() {
		what := fmt.Sprintf("conv %+v", s)
		nx, nc := s.N*s.C*s.H*s.W, s.ColRows()*s.ColCols()
		x, c := randFloats(r, nx), randFloats(r, nc)
		xb, cb := guarded(t, d, x), guarded(t, d, c)

		colB := output[float32](t, d, nc)
		cv.Im2Col(colB, xb, s)
		col := result[float32](t, d, what+" Im2Col col", colB, nc)
		closeEnough(t, what+" Im2Col col", col, im2colRef(x, s), 0, 0)
		unchanged(t, d, what+" Im2Col x", xb, x)

		dxB := output[float32](t, d, nx)
		cv.Col2Im(dxB, cb, s)
		dx := result[float32](t, d, what+" Col2Im dx", dxB, nx)
		closeEnough(t, what+" Col2Im dx", dx, col2imRef(c, s), 1e-5, 1e-5)
		unchanged(t, d, what+" Col2Im col", cb, c)

		left, ls := dot(col, c)
		right, rs := dot(x, dx)
		if math.Abs(left-right) > 1e-5*(ls+rs) {
			t.Errorf("%s: ⟨Im2Col(x), c⟩ = %g but ⟨x, Col2Im(c)⟩ = %g", what, left, right)
		}
	}
}

// checkSwapAxes checks dst[o, j, i, k] = src[o, i, j, k] on the layouts
// convolutions use and on odd ones.
func checkSwapAxes(t *testing.T, newDevice NewDevice) {
	d, cv, r := convCheck(t, newDevice, 22)
	for _, sh := range [][4]int{{1, 1, 1, 1}, {1, 6, 5, 784}, {1, 5, 6, 784}, {3, 7, 31, 1}, {2, 33, 9, 1}, {5, 1, 4, 3}, {4, 3, 1, 2}, {2, 3, 5, 7}} {
		outer, a, b, inner := sh[0], sh[1], sh[2], sh[3]
		what := fmt.Sprintf("SwapAxes %dx%dx%dx%d", outer, a, b, inner)
		n := outer * a * b * inner
		src := randFloats(r, n)
		want := make([]float64, n)
		for o := range outer {
			for i := range a {
				for j := range b {
					for k := range inner {
						want[((o*b+j)*a+i)*inner+k] = float64(src[((o*a+i)*b+j)*inner+k])
					}
				}
			}
		}
		sb, db := guarded(t, d, src), output[float32](t, d, n)
		cv.SwapAxes(db, sb, outer, a, b, inner)
		closeEnough(t, what+" dst", result[float32](t, d, what+" dst", db, n), want, 0, 0)
		unchanged(t, d, what+" src", sb, src)
	}
}

// poolShapes are awkward poolings: overlapping windows (stride < K) with
// and without padding, odd sizes, one channel, one row, a window as large
// as the image, long rows.
func poolShapes() []device.PoolShape {
	return []device.PoolShape{
		{N: 2, C: 3, H: 8, W: 8, K: 2, Stride: 2, Pad: 0},
		{N: 2, C: 3, H: 7, W: 9, K: 2, Stride: 2, Pad: 0},
		{N: 2, C: 2, H: 7, W: 9, K: 3, Stride: 2, Pad: 1},
		{N: 1, C: 1, H: 5, W: 5, K: 2, Stride: 2, Pad: 1},
		{N: 1, C: 1, H: 5, W: 5, K: 3, Stride: 1, Pad: 1},
		{N: 3, C: 2, H: 1, W: 7, K: 1, Stride: 1, Pad: 0},
		{N: 1, C: 3, H: 6, W: 5, K: 2, Stride: 2, Pad: 1},
		{N: 2, C: 1, H: 9, W: 9, K: 5, Stride: 3, Pad: 2},
		{N: 1, C: 2, H: 4, W: 4, K: 4, Stride: 4, Pad: 0},
		{N: 2, C: 3, H: 3, W: 11, K: 3, Stride: 1, Pad: 0},
		// Rows of 14 and 16 windows, which the CPU pools eight at a time.
		{N: 2, C: 3, H: 6, W: 28, K: 2, Stride: 2, Pad: 0},
		{N: 1, C: 2, H: 4, W: 33, K: 2, Stride: 2, Pad: 0},
	}
}

// poolSizes is the number of elements of a pooling's input and of its output.
func poolSizes(s device.PoolShape) (nx, ny int) {
	return s.N * s.C * s.H * s.W, s.N * s.C * s.OutH() * s.OutW()
}

// wholeNumbers is n random whole numbers from lo to hi: few values, so that
// pooling windows have ties.
func wholeNumbers(r *rand.Rand, n, lo, hi int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + r.IntN(hi-lo+1))
	}
	return x
}

// maxPoolRef is MaxPool's definition: each window's first largest element
// in row-major order over the image (padding is never a candidate), the
// first NaN if there is one.
func maxPoolRef(x []float32, s device.PoolShape) (y []float64, argmax []int32) {
	oh, ow := s.OutH(), s.OutW()
	y, argmax = make([]float64, s.N*s.C*oh*ow), make([]int32, s.N*s.C*oh*ow)
	for p := range s.N * s.C {
		for yo := range oh {
			for xo := range ow {
				at := -1
				for i := range s.K {
					for j := range s.K {
						h, w := yo*s.Stride-s.Pad+i, xo*s.Stride-s.Pad+j
						if h < 0 || h >= s.H || w < 0 || w >= s.W {
							continue
						}
						k := (p*s.H+h)*s.W + w
						switch {
						case at >= 0 && math.IsNaN(float64(x[at])):
						case at < 0 || x[k] > x[at] || math.IsNaN(float64(x[k])):
							at = k
						}
					}
				}
				o := (p*oh+yo)*ow + xo
				y[o], argmax[o] = float64(x[at]), int32(at)
			}
		}
	}
	return y, argmax
}

// checkMaxPool checks MaxPool on negative integers, so that windows have ties
// and a padding read as zero would win, with NaNs planted in some shapes.
func checkMaxPool(t *testing.T, newDevice NewDevice) {
	d, cv, r := convCheck(t, newDevice, 23)
	for si, s := range poolShapes() {
		what := fmt.Sprintf("MaxPool %+v", s)
		nx, ny := poolSizes(s)
		x := wholeNumbers(r, nx, -3, -1)
		if si%2 == 1 { // NaNs of either sign: a comparison of bits orders them apart
			for k := range 3 {
				x[r.IntN(nx)] = math.Float32frombits(0x7fc00000 | uint32(k%2)<<31)
			}
		}
		wantY, wantArg := maxPoolRef(x, s)
		xb, yb, ab := guarded(t, d, x), output[float32](t, d, ny), output[int32](t, d, ny)
		cv.MaxPool(yb, ab, xb, s)
		y := result[float32](t, d, what+" y", yb, ny)
		for i := range y {
			if !sameBits(y[i], float32(wantY[i])) {
				t.Errorf("%s y[%d] = %v, want %v", what, i, y[i], wantY[i])
				break
			}
		}
		arg := result[int32](t, d, what+" argmax", ab, ny)
		for i := range arg {
			if arg[i] != wantArg[i] {
				t.Errorf("%s argmax[%d] = %d, want %d (the first largest in its window)", what, i, arg[i], wantArg[i])
				break
			}
		}
		unchanged(t, d, what+" x", xb, x)
	}
}

// checkMaxPoolBackward checks that dx gets, at each position, the sum of dy
// over the windows whose argmax it is: overlapping windows choose one
// position several times.
func checkMaxPoolBackward(t *testing.T, newDevice NewDevice) {
	d, cv, r := convCheck(t, newDevice, 24)
	for _, s := range poolShapes() {
		what := fmt.Sprintf("MaxPoolBackward %+v", s)
		nx, ny := poolSizes(s)
		x := wholeNumbers(r, nx, 0, 3) // ties, so that overlapping windows share their argmax
		_, argmax := maxPoolRef(x, s)
		dy := randFloats(r, ny)
		want := make([]float64, nx)
		for o, a := range argmax {
			want[a] += float64(dy[o])
		}
		dyb, ab, dxb := guarded(t, d, dy), guarded(t, d, argmax), output[float32](t, d, nx)
		cv.MaxPoolBackward(dxb, dyb, ab, s)
		closeEnough(t, what+" dx", result[float32](t, d, what+" dx", dxb, nx), want, 1e-6, 1e-6)
		unchanged(t, d, what+" dy", dyb, dy)
		unchanged(t, d, what+" argmax", ab, argmax)

		// Argmaxes outside their windows add nothing. Every other window
		// gets one: in turn the position one row below the window (in the
		// image or past it), one column right of it, in the next plane, and
		// outside x.
		bad := slices.Clone(argmax)
		oh, ow := s.OutH(), s.OutW()
		for o := 0; o < len(bad); o += 2 {
			p, yo, xo := o/(oh*ow), o/ow%oh, o%ow
			h0, w0 := max(yo*s.Stride-s.Pad, 0), max(xo*s.Stride-s.Pad, 0)
			h1, w1 := min(yo*s.Stride-s.Pad+s.K, s.H), min(xo*s.Stride-s.Pad+s.K, s.W)
			outside := []int{(p*s.H+h1)*s.W + w0, (p*s.H+h0)*s.W + w1, ((p+1)*s.H+h0)*s.W + w0, -1, nx}
			a := outside[o/2%len(outside)]
			if inWindow := a >= 0 && a < nx && a/(s.H*s.W) == p && a/s.W%s.H >= h0 && a/s.W%s.H < h1 && a%s.W >= w0 && a%s.W < w1; !inWindow {
				bad[o] = int32(a)
				want[argmax[o]] -= float64(dy[o])
			}
		}
		badb := guarded(t, d, bad)
		cv.MaxPoolBackward(dxb, dyb, badb, s)
		closeEnough(t, what+" dx, argmaxes outside their windows", result[float32](t, d, what+" dx", dxb, nx), want, 1e-6, 1e-6)
	}
}

// checkConvBadArguments checks that a bad shape or a short buffer becomes
// the device's error, naming the call and the problem.
func checkConvBadArguments(t *testing.T, newDevice NewDevice) {
	good := device.ConvShape{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, Stride: 1, Pad: 0}
	pool := device.PoolShape{N: 1, C: 1, H: 4, W: 4, K: 2, Stride: 2}
	cases := []struct {
		call, why string
		run       func(cv device.Convolver, f10, f40, i10 device.Buffer)
	}{
		{"Im2Col", "kernel 4×2 larger than the padded image 3×3", func(cv device.Convolver, f10, f40, _ device.Buffer) {
			s := good
			s.KH = 4
			cv.Im2Col(f40, f10, s)
		}},
		{"Im2Col", "stride is 0", func(cv device.Convolver, f10, f40, _ device.Buffer) {
			s := good
			s.Stride = 0
			cv.Im2Col(f40, f10, s)
		}},
		{"Im2Col", "col holds 10 elements, the call needs 16", func(cv device.Convolver, f10, _, _ device.Buffer) { cv.Im2Col(f10, f10, good) }},
		{"Col2Im", "negative padding", func(cv device.Convolver, f10, f40, _ device.Buffer) {
			s := good
			s.Pad = -1
			cv.Col2Im(f10, f40, s)
		}},
		{"SwapAxes", "b is 0", func(cv device.Convolver, f10, f40, _ device.Buffer) { cv.SwapAxes(f10, f40, 1, 2, 0, 1) }},
		{"SwapAxes", "src holds 10 elements, the call needs 12", func(cv device.Convolver, f10, f40, _ device.Buffer) { cv.SwapAxes(f40, f10, 1, 3, 4, 1) }},
		{"MaxPool", "padding 2 more than half the window 2", func(cv device.Convolver, f10, f40, i10 device.Buffer) {
			s := pool
			s.Pad = 2
			cv.MaxPool(f10, i10, f40, s)
		}},
		{"MaxPool", "argmax is float32, want int32", func(cv device.Convolver, f10, f40, _ device.Buffer) { cv.MaxPool(f10, f10, f40, pool) }},
		{"MaxPoolBackward", "dx holds 10 elements, the call needs 16", func(cv device.Convolver, f10, _, i10 device.Buffer) {
			cv.MaxPoolBackward(f10, f10, i10, pool)
		}},
	}
	for _, c := range cases {
		d := newDevice(t)
		f10, _ := d.Alloc(device.Float32, 10)
		f40, _ := d.Alloc(device.Float32, 40)
		i10, _ := d.Alloc(device.Int32, 10)
		c.run(convolver(t, d), f10, f40, i10)
		err := d.Sync()
		if err == nil {
			t.Errorf("%s (%s): no error", c.call, c.why)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, c.call+":") || !strings.Contains(msg, c.why) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line naming the call and %q", c.call, msg, c.why)
		}
	}
}
