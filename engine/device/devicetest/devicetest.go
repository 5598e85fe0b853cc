// Package devicetest is the conformance suite every Device must pass, in the
// manner of gonum's blas/testblas: one exported function per primitive, each
// checking a device against references computed here, independently of any
// device, in float64 with plain loops. The CPU device's tests call it, and so
// do the CUDA device's, on inputs of awkward sizes.
package devicetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/batchlab/batchlab/engine/device"
)

// NewDevice opens a fresh device for one check. A fresh one each time,
// because a device that met an error stays failed (see package device).
type NewDevice func(t *testing.T) device.Device

// Run runs every check of the suite as a subtest.
func Run(t *testing.T, newDevice NewDevice) {
	checks := []struct {
		name string
		fn   func(*testing.T, NewDevice)
	}{
		{"Copy", Copy}, {"Gemm", Gemm}, {"AddBias", AddBias}, {"ReLU", ReLU},
		{"ReLUBackward", ReLUBackward}, {"SoftmaxCrossEntropy", SoftmaxCrossEntropy},
		{"CountCorrect", CountCorrect}, {"ColumnSum", ColumnSum}, {"MomentumSGD", MomentumSGD},
		{"NormalizeBytes", NormalizeBytes}, {"GatherRows", GatherRows}, {"Zero", Zero},
		{"Events", Events}, {"AsyncCopy", AsyncCopy}, {"BatchNorm", BatchNorm}, {"Graphs", Graphs},
		{"BadArguments", BadArguments},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDevice) })
	}
}

// Sizes are the element counts elementwise checks run on: one element, less
// than a warp, not a multiple of any block size, and one past a power of two.
var Sizes = []int{1, 31, 1000, 4097}

// Shapes are (rows, cols) pairs for row-wise checks.
var Shapes = [][2]int{{1, 1}, {1, 10}, {31, 10}, {7, 1000}, {1000, 3}, {257, 33}}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func randLabels(r *rand.Rand, n, classes int) []int32 {
	x := make([]int32, n)
	for i := range x {
		x[i] = int32(r.IntN(classes))
	}
	return x
}

// upload allocates a buffer on d holding host.
func upload[T device.Element](t *testing.T, d device.Device, dt device.DType, host []T) device.Buffer {
	t.Helper()
	b, err := d.Alloc(dt, len(host))
	if err != nil {
		t.Fatalf("Alloc(%v, %d): %v", dt, len(host), err)
	}
	if err := device.Upload(d, b, host); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	return b
}

// download syncs d and reads n elements of b.
func download[T device.Element](t *testing.T, d device.Device, b device.Buffer, n int) []T {
	t.Helper()
	if err := d.Sync(); err != nil {
		t.Fatalf("device error: %v", err)
	}
	out := make([]T, n)
	if err := device.Download(d, out, b); err != nil {
		t.Fatalf("Download: %v", err)
	}
	return out
}

// closeEnough compares float32 results with float64 references: each
// element within atol + rtol·|want|.
func closeEnough(t *testing.T, what string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		g := float64(got[i])
		if math.IsNaN(g) || math.Abs(g-want[i]) > atol+rtol*math.Abs(want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %g, want %g", what, i, g, want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values wrong", what, bad, len(got))
	}
}

// Copy checks host↔device round trips of every dtype and the traffic count.
func Copy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(1)
	for _, n := range Sizes {
		before := d.Traffic()
		f := randFloats(r, n)
		fb := upload(t, d, device.Float32, f)
		u := make([]uint8, n)
		for i := range u {
			u[i] = uint8(r.IntN(256))
		}
		ub := upload(t, d, device.Uint8, u)
		l := randLabels(r, n, 1<<30)
		lb := upload(t, d, device.Int32, l)
		if fb.Len() != n || ub.Len() != n || lb.Len() != n {
			t.Fatalf("n=%d: lengths %d %d %d", n, fb.Len(), ub.Len(), lb.Len())
		}
		gotF := download[float32](t, d, fb, n)
		gotU := download[uint8](t, d, ub, n)
		gotL := download[int32](t, d, lb, n)
		for i := 0; i < n; i++ {
			if gotF[i] != f[i] || gotU[i] != u[i] || gotL[i] != l[i] {
				t.Fatalf("n=%d: element %d did not survive the round trip", n, i)
			}
		}
		want := device.Traffic{
			HostToDeviceBytes: int64(9 * n), HostToDeviceCopies: 3,
			DeviceToHostBytes: int64(9 * n), DeviceToHostCopies: 3,
		}
		if got := d.Traffic().Sub(before); got != want {
			t.Errorf("n=%d: traffic %+v, want %+v", n, got, want)
		}
		// A partial copy fills the start and leaves the rest alone.
		if err := device.Upload(d, fb, []float32{42}); err != nil {
			t.Fatal(err)
		}
		if got := download[float32](t, d, fb, n); got[0] != 42 || (n > 1 && got[1] != f[1]) {
			t.Errorf("n=%d: partial copy wrote %v...", n, got[:min(n, 2)])
		}
		for _, b := range []device.Buffer{fb, ub, lb} {
			d.Free(b)
		}
	}
	fresh, err := d.Alloc(device.Float32, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range download[float32](t, d, fresh, 5) {
		if v != 0 {
			t.Errorf("Alloc did not zero: element %d is %g", i, v)
		}
	}
	if err := device.Upload(d, fresh, make([]float32, 6)); err == nil {
		t.Error("copying 6 elements into a buffer of 5 did not fail")
	}
	if err := device.Upload(d, fresh, []int32{1}); err == nil {
		t.Error("copying int32 into a float32 buffer did not fail")
	}
}

// AsyncCopy checks CopyInAsync from host memory of AllocHost: compute
// issued after the copy sees the data, and the traffic is counted.
func AsyncCopy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	done, err := d.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Sizes {
		host, err := d.AllocHost(4 * n)
		if err != nil {
			t.Fatalf("AllocHost(%d): %v", 4*n, err)
		}
		if len(host) != 4*n {
			t.Fatalf("AllocHost(%d) gave %d bytes", 4*n, len(host))
		}
		x := randFloats(rng(13), n)
		copy(host, device.Bytes(x))
		b, _ := d.Alloc(device.Float32, n)
		y, _ := d.Alloc(device.Float32, n)
		before := d.Traffic()
		if err := d.CopyInAsync(b, host, done); err != nil {
			t.Fatal(err)
		}
		d.ReLU(y, b, n) // must wait for the copy
		if err := d.WaitEvent(done); err != nil {
			t.Fatal(err)
		}
		clear(host) // allowed once the copy is done
		want := make([]float64, n)
		for i, v := range x {
			want[i] = math.Max(float64(v), 0)
		}
		closeEnough(t, fmt.Sprintf("ReLU after CopyInAsync n=%d", n), download[float32](t, d, y, n), want, 0, 0)
		if got := d.Traffic().Sub(before); got.HostToDeviceBytes != int64(4*n) || got.HostToDeviceCopies != 1 {
			t.Errorf("n=%d: traffic %+v, want %d bytes in 1 copy", n, got, 4*n)
		}
		d.FreeHost(host)
	}
}

// gemmRef is C = alpha·op(A)·op(B) + beta·C in float64, row-major.
func gemmRef(tA, tB bool, m, n, k int, alpha float64, a, b []float32, beta float64, c []float32) []float64 {
	at := func(i, p int) float64 {
		if tA {
			return float64(a[p*m+i])
		}
		return float64(a[i*k+p])
	}
	bt := func(p, j int) float64 {
		if tB {
			return float64(b[j*k+p])
		}
		return float64(b[p*n+j])
	}
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			out[i*n+j] = alpha*s + beta*float64(c[i*n+j])
		}
	}
	return out
}

// Gemm checks every transpose combination on awkward shapes, with beta 0
// (C's old contents, even NaN, must not leak in) and beta ≠ 0.
func Gemm(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(2)
	shapes := [][3]int{{1, 1, 1}, {31, 17, 5}, {3, 1000, 7}, {64, 10, 512}, {129, 65, 33}}
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					a, b, c := randFloats(r, m*k), randFloats(r, k*n), randFloats(r, m*n)
					if beta == 0 {
						c[0] = float32(math.NaN())
					}
					want := gemmRef(tA, tB, m, n, k, 1.5, a, b, float64(beta), c)
					if beta == 0 {
						want = gemmRef(tA, tB, m, n, k, 1.5, a, b, 0, make([]float32, m*n))
					}
					ab, bb, cb := upload(t, d, device.Float32, a), upload(t, d, device.Float32, b), upload(t, d, device.Float32, c)
					d.Gemm(tA, tB, m, n, k, 1.5, ab, bb, beta, cb)
					got := download[float32](t, d, cb, m*n)
					tol := 1e-5 * math.Sqrt(float64(k)) * 4
					closeEnough(t, fmt.Sprintf("Gemm(tA=%v,tB=%v,m=%d,n=%d,k=%d,beta=%g)", tA, tB, m, n, k, beta), got, want, tol, tol)
					d.Free(ab)
					d.Free(bb)
					d.Free(cb)
				}
			}
		}
	}
}

// AddBias checks x[i,j] += bias[j].
func AddBias(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(3)
	for _, s := range Shapes {
		rows, cols := s[0], s[1]
		x, bias := randFloats(r, rows*cols), randFloats(r, cols)
		want := make([]float64, rows*cols)
		for i := range want {
			want[i] = float64(x[i]) + float64(bias[i%cols])
		}
		xb, bb := upload(t, d, device.Float32, x), upload(t, d, device.Float32, bias)
		d.AddBias(xb, bb, rows, cols)
		closeEnough(t, fmt.Sprintf("AddBias %dx%d", rows, cols), download[float32](t, d, xb, rows*cols), want, 1e-6, 1e-6)
	}
}

// ReLU checks y = max(x, 0), out of place and in place.
func ReLU(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(4)
	for _, n := range Sizes {
		x := randFloats(r, n)
		want := make([]float64, n)
		for i, v := range x {
			want[i] = math.Max(float64(v), 0)
		}
		xb := upload(t, d, device.Float32, x)
		yb, _ := d.Alloc(device.Float32, n)
		d.ReLU(yb, xb, n)
		closeEnough(t, fmt.Sprintf("ReLU n=%d", n), download[float32](t, d, yb, n), want, 0, 0)
		d.ReLU(xb, xb, n)
		closeEnough(t, fmt.Sprintf("ReLU in place n=%d", n), download[float32](t, d, xb, n), want, 0, 0)
	}
}

// ReLUBackward checks dx = dy·[y > 0], including y = 0 exactly.
func ReLUBackward(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(5)
	for _, n := range Sizes {
		dy, y := randFloats(r, n), randFloats(r, n)
		y[0] = 0
		want := make([]float64, n)
		for i := range want {
			if y[i] > 0 {
				want[i] = float64(dy[i])
			}
		}
		dyb, yb := upload(t, d, device.Float32, dy), upload(t, d, device.Float32, y)
		dxb, _ := d.Alloc(device.Float32, n)
		d.ReLUBackward(dxb, dyb, yb, n)
		closeEnough(t, fmt.Sprintf("ReLUBackward n=%d", n), download[float32](t, d, dxb, n), want, 0, 0)
	}
}

// SoftmaxCrossEntropy checks the mean loss in its slot and the gradient,
// with large logits that overflow a naive exp.
func SoftmaxCrossEntropy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(6)
	for _, s := range Shapes {
		rows, cols := s[0], s[1]
		x := randFloats(r, rows*cols)
		x[0] = 100 // exp(100) overflows float32: the kernel must subtract the max
		labels := randLabels(r, rows, cols)
		const scale = 0.25
		var loss float64
		grad := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			row := x[i*cols : (i+1)*cols]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - m)
			}
			loss += math.Log(z) + m - float64(row[labels[i]])
			for j, v := range row {
				p := math.Exp(float64(v)-m) / z
				if j == int(labels[i]) {
					p--
				}
				grad[i*cols+j] = scale * p
			}
		}
		loss /= float64(rows)
		xb, lb := upload(t, d, device.Float32, x), upload(t, d, device.Int32, labels)
		gb, _ := d.Alloc(device.Float32, rows*cols)
		losses := upload(t, d, device.Float32, []float32{-1, -1, -1})
		d.SoftmaxCrossEntropy(gb, losses, xb, lb, 1, rows, cols, scale)
		what := fmt.Sprintf("SoftmaxCrossEntropy %dx%d", rows, cols)
		closeEnough(t, what+" losses", download[float32](t, d, losses, 3), []float64{-1, loss, -1}, 1e-5, 1e-5)
		closeEnough(t, what+" grad", download[float32](t, d, gb, rows*cols), grad, 1e-6, 1e-5)
		// Without a gradient buffer only the loss is written.
		d.SoftmaxCrossEntropy(nil, losses, xb, lb, 2, rows, cols, scale)
		closeEnough(t, what+" loss only", download[float32](t, d, losses, 3), []float64{-1, loss, loss}, 1e-5, 1e-5)
	}
}

// CountCorrect checks the argmax count, with ties going to the first index.
func CountCorrect(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(7)
	for _, s := range Shapes {
		rows, cols := s[0], s[1]
		x := randFloats(r, rows*cols)
		labels := randLabels(r, rows, cols)
		for i := 0; i < rows; i += 3 { // make a third of the rows right
			x[i*cols+int(labels[i])] = 10
		}
		if cols > 1 { // a tie between the first two columns counts for column 0
			x[0], x[1], labels[0] = 20, 20, 1
		}
		want := 0
		for i := 0; i < rows; i++ {
			best := 0
			for j := 1; j < cols; j++ {
				if x[i*cols+j] > x[i*cols+best] {
					best = j
				}
			}
			if best == int(labels[i]) {
				want++
			}
		}
		xb, lb := upload(t, d, device.Float32, x), upload(t, d, device.Int32, labels)
		counts := upload(t, d, device.Int32, []int32{-1, -1})
		d.CountCorrect(counts, xb, lb, 1, rows, cols)
		if got := download[int32](t, d, counts, 2); got[0] != -1 || int(got[1]) != want {
			t.Errorf("CountCorrect %dx%d = %v, want [-1 %d]", rows, cols, got, want)
		}
	}
}

// ColumnSum checks dst = beta·dst + column sums, for beta 0 and 1.
func ColumnSum(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(8)
	for _, s := range Shapes {
		rows, cols := s[0], s[1]
		for _, beta := range []float32{0, 1} {
			x, dst := randFloats(r, rows*cols), randFloats(r, cols)
			want := make([]float64, cols)
			for j := range want {
				want[j] = float64(beta) * float64(dst[j])
				for i := 0; i < rows; i++ {
					want[j] += float64(x[i*cols+j])
				}
			}
			xb, db := upload(t, d, device.Float32, x), upload(t, d, device.Float32, dst)
			d.ColumnSum(db, xb, rows, cols, beta)
			tol := 1e-5 * math.Sqrt(float64(rows)) * 4
			closeEnough(t, fmt.Sprintf("ColumnSum %dx%d beta=%g", rows, cols, beta), download[float32](t, d, db, cols), want, tol, tol)
		}
	}
}

// MomentumSGD checks two steps of the PyTorch update rule.
func MomentumSGD(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(9)
	const lr, mom, wd = 0.1, 0.9, 0.01
	for _, n := range Sizes {
		w, g := randFloats(r, n), randFloats(r, n)
		wantW, wantV := make([]float64, n), make([]float64, n)
		for i := range w {
			wantW[i] = float64(w[i])
		}
		for step := 0; step < 2; step++ {
			for i := range wantW {
				wantV[i] = mom*wantV[i] + float64(g[i]) + wd*wantW[i]
				wantW[i] -= lr * wantV[i]
			}
		}
		wb, gb := upload(t, d, device.Float32, w), upload(t, d, device.Float32, g)
		vb, _ := d.Alloc(device.Float32, n)
		d.MomentumSGD(wb, gb, vb, n, lr, mom, wd)
		d.MomentumSGD(wb, gb, vb, n, lr, mom, wd)
		closeEnough(t, fmt.Sprintf("MomentumSGD w n=%d", n), download[float32](t, d, wb, n), wantW, 1e-6, 1e-5)
		closeEnough(t, fmt.Sprintf("MomentumSGD v n=%d", n), download[float32](t, d, vb, n), wantV, 1e-6, 1e-5)
	}
}

// NormalizeBytes checks dst = scale·src + shift over every byte value.
func NormalizeBytes(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	for _, n := range Sizes {
		src := make([]uint8, n)
		want := make([]float64, n)
		for i := range src {
			src[i] = uint8(i * 7)
			want[i] = float64(float32(1.0/255)*float32(src[i])) - 0.5
		}
		sb := upload(t, d, device.Uint8, src)
		db, _ := d.Alloc(device.Float32, n)
		d.NormalizeBytes(db, sb, n, 1.0/255, -0.5)
		closeEnough(t, fmt.Sprintf("NormalizeBytes n=%d", n), download[float32](t, d, db, n), want, 1e-6, 1e-6)
	}
}

// GatherRows checks dst[i,:] = src[idx[i],:] for float32 and uint8 rows,
// with repeated and out-of-order indices.
func GatherRows(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(10)
	for _, s := range Shapes {
		srcRows, rowLen := s[0]+2, s[1]
		rows := s[0]
		idx := make([]int32, rows)
		for i := range idx {
			idx[i] = int32(r.IntN(srcRows))
		}
		idx[0] = int32(srcRows - 1)
		src := randFloats(r, srcRows*rowLen)
		want := make([]float64, rows*rowLen)
		srcU := make([]uint8, srcRows*rowLen)
		for i := range srcU {
			srcU[i] = uint8(r.IntN(256))
		}
		wantU := make([]uint8, rows*rowLen)
		for i, k := range idx {
			for j := 0; j < rowLen; j++ {
				want[i*rowLen+j] = float64(src[int(k)*rowLen+j])
				wantU[i*rowLen+j] = srcU[int(k)*rowLen+j]
			}
		}
		ib := upload(t, d, device.Int32, idx)
		sb, sub := upload(t, d, device.Float32, src), upload(t, d, device.Uint8, srcU)
		db, _ := d.Alloc(device.Float32, rows*rowLen)
		dub, _ := d.Alloc(device.Uint8, rows*rowLen)
		d.GatherRows(db, sb, ib, rows, rowLen)
		d.GatherRows(dub, sub, ib, rows, rowLen)
		closeEnough(t, fmt.Sprintf("GatherRows float32 %dx%d", rows, rowLen), download[float32](t, d, db, rows*rowLen), want, 0, 0)
		gotU := download[uint8](t, d, dub, rows*rowLen)
		for i := range gotU {
			if gotU[i] != wantU[i] {
				t.Fatalf("GatherRows uint8 %dx%d: element %d = %d, want %d", rows, rowLen, i, gotU[i], wantU[i])
			}
		}
	}
}

// Zero checks that every dtype is cleared.
func Zero(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	for _, n := range Sizes {
		fb := upload(t, d, device.Float32, randFloats(rng(11), n))
		ub := upload(t, d, device.Uint8, make([]uint8, n))
		d.Zero(fb)
		d.Zero(ub)
		for i, v := range download[float32](t, d, fb, n) {
			if v != 0 {
				t.Fatalf("Zero n=%d: element %d is %g", n, i, v)
			}
		}
	}
}

// Events checks that the time between two events brackets real work.
func Events(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	start, err := d.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	end, err := d.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	const n = 256
	a := upload(t, d, device.Float32, randFloats(rng(12), n*n))
	c, _ := d.Alloc(device.Float32, n*n)
	d.RecordEvent(start)
	d.Gemm(false, false, n, n, n, 1, a, a, 0, c)
	d.RecordEvent(end)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	el, err := d.EventElapsed(start, end)
	if err != nil {
		t.Fatal(err)
	}
	if el <= 0 || el > time.Minute {
		t.Errorf("a %d³ GEMM took %v between events", n, el)
	}
}

// BadArguments checks that a wrong shape or dtype becomes the device's
// error, naming the call, and that later calls are skipped, not run.
func BadArguments(t *testing.T, newDevice NewDevice) {
	cases := []struct {
		name string
		call func(d device.Device, f10, f4 device.Buffer, i4 device.Buffer)
	}{
		{"Gemm", func(d device.Device, f10, f4, _ device.Buffer) { d.Gemm(false, false, 3, 3, 3, 1, f10, f10, 0, f4) }},
		{"ReLU", func(d device.Device, f10, _, i4 device.Buffer) { d.ReLU(f10, i4, 4) }},
		{"AddBias", func(d device.Device, f10, f4, _ device.Buffer) { d.AddBias(f4, f10, 2, 3) }},
		{"SoftmaxCrossEntropy", func(d device.Device, f10, f4, i4 device.Buffer) {
			d.SoftmaxCrossEntropy(nil, f4, f10, i4, 4, 2, 5, 1)
		}},
		// Bad values inside buffers: a GPU finds them in its kernels and
		// reports them at Sync.
		{"SoftmaxCrossEntropy", func(d device.Device, f10, f4, i4 device.Buffer) {
			device.Upload(d, i4, []int32{1, 5}) // 5 classes: label 5 is outside
			d.SoftmaxCrossEntropy(nil, f4, f10, i4, 0, 2, 5, 1)
		}},
		{"GatherRows", func(d device.Device, f10, f4, i4 device.Buffer) {
			device.Upload(d, i4, []int32{0, -1}) // rows of 2: f10 has rows 0 to 4
			d.GatherRows(f4, f10, i4, 2, 2)
		}},
		{"GatherRows", func(d device.Device, f10, f4, i4 device.Buffer) {
			device.Upload(d, i4, []int32{5, 0})
			d.GatherRows(f4, f10, i4, 2, 2)
		}},
	}
	for _, c := range cases {
		d := newDevice(t)
		f10, _ := d.Alloc(device.Float32, 10)
		f4, _ := d.Alloc(device.Float32, 4)
		i4, _ := d.Alloc(device.Int32, 4)
		c.call(d, f10, f4, i4)
		err := d.Sync()
		if err == nil {
			t.Errorf("%s with bad arguments: no error", c.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.name+":") {
			t.Errorf("%s: error %q does not name the call", c.name, msg)
		}
		// Later calls are skipped: the buffer keeps its value.
		if err := device.Upload(d, f4, []float32{-3, 0, 0, 0}); err != nil {
			t.Fatal(err)
		}
		d.ReLU(f4, f4, 4)
		out := make([]float32, 4)
		if err := device.Download(d, out, f4); err != nil {
			t.Fatal(err)
		}
		if out[0] != -3 {
			t.Errorf("%s: a call after the error still ran", c.name)
		}
	}
}
