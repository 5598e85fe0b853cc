// Package devicetest is the conformance suite every Device must pass, in the
// manner of gonum's blas/testblas: one check per primitive, each checking a
// device against references computed here, independently of any device, in
// float64 with plain loops. These loops, not the CPU device, are the oracle:
// the CPU device's tests run the suite, and so do the CUDA device's, on
// inputs of awkward sizes.
//
// Every check of a primitive fills its buffers with known data and keeps a
// host copy. Each buffer is longer than the call uses, its tail filled with
// a sentinel; outputs start as sentinels throughout, so an element the call
// fails to write shows. After the call every buffer is read back: inputs
// must be unchanged, and no tail may be touched.
package devicetest

import (
	"bytes"
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

// Run runs every check of the suite as a subtest; Graphs only for a
// device that implements device.Grapher (the CPU does not: that is no skip,
// there is nothing to check; the CUDA device asserts it is one at compile
// time).
func Run(t *testing.T, newDevice NewDevice) {
	checks := []struct {
		name string
		fn   func(*testing.T, NewDevice)
	}{
		{"Copy", checkCopy}, {"Gemm", checkGemm}, {"AddBias", checkAddBias}, {"ReLU", checkReLU},
		{"ReLUBackward", checkReLUBackward}, {"SoftmaxCrossEntropy", checkSoftmaxCrossEntropy},
		{"CountCorrect", checkCountCorrect}, {"ColumnSum", checkColumnSum}, {"MomentumSGD", checkMomentumSGD},
		{"DivergenceGuard", checkDivergenceGuard}, {"Adam", checkAdam},
		{"NormalizeBytes", checkNormalizeBytes}, {"GatherRows", checkGatherRows}, {"Zero", checkZero},
		{"Events", checkEvents}, {"AsyncCopy", checkAsyncCopy}, {"BatchNorm", checkBatchNorm}, {"Im2Col", checkIm2Col}, {"SwapAxes", checkSwapAxes}, {"MaxPool", checkMaxPool},
		{"MaxPoolBackward", checkMaxPoolBackward}, {"ConvBadArguments", checkConvBadArguments}, {"Graphs", checkGraphs},
		{"BadArguments", checkBadArguments},
	}
	_, grapher := newDevice(t).(device.Grapher)
	for _, c := range checks {
		if c.name == "Graphs" && !grapher {
			continue
		}
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDevice) })
	}
}

// sizes are the element counts elementwise checks run on: one element, less
// than a warp, not a multiple of any block size, and one past a power of two.
func sizes() []int { return []int{1, 31, 1000, 4097} }

// shapes are (rows, cols) pairs for row-wise checks.
func shapes() [][2]int { return [][2]int{{1, 1}, {1, 10}, {31, 10}, {7, 1000}, {1000, 3}, {257, 33}} }

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

// guard is the number of elements past what a call uses in each buffer a
// check gives it: a device that writes past n overwrites them.
const guard = 7

// sentinel is what fills the guard, and outputs before a call: values the
// checks' data never holds. For float32 a negative number far from them,
// not a NaN: a NaN comes out of max(NaN, 0) or NaN + bias unchanged, bit
// for bit, so a ReLU or AddBias writing past n would leave it as it was,
// where this one is zeroed or changed.
func sentinel[T device.Element]() T {
	var s T
	switch p := any(&s).(type) {
	case *float32:
		*p = -12345.5
	case *uint8:
		*p = 0xa5
	case *int32:
		*p = -0x5a5a5a5b
	}
	return s
}

func dtypeOf[T device.Element]() device.DType {
	var zero T
	switch any(zero).(type) {
	case uint8:
		return device.Uint8
	case int32:
		return device.Int32
	}
	return device.Float32
}

// guarded allocates a buffer on d of len(host)+guard elements, holding host
// then the sentinel.
func guarded[T device.Element](t *testing.T, d device.Device, host []T) device.Buffer {
	t.Helper()
	full := make([]T, len(host)+guard)
	copy(full, host)
	for i := len(host); i < len(full); i++ {
		full[i] = sentinel[T]()
	}
	return upload(t, d, dtypeOf[T](), full)
}

// output is a guarded buffer for n elements a call writes: sentinels
// throughout, so that an element left unwritten fails the comparison.
func output[T device.Element](t *testing.T, d device.Device, n int) device.Buffer {
	t.Helper()
	host := make([]T, n)
	for i := range host {
		host[i] = sentinel[T]()
	}
	return guarded(t, d, host)
}

// unchanged checks that b, made by guarded from host, still holds host and
// its guard: what checks require of a call's inputs.
func unchanged[T device.Element](t *testing.T, d device.Device, what string, b device.Buffer, host []T) {
	t.Helper()
	got := download[T](t, d, b, len(host)+guard)
	for i := range host {
		if !sameBits(got[i], host[i]) {
			t.Errorf("%s: input element %d changed from %v to %v", what, i, host[i], got[i])
			return
		}
	}
	guardIntact(t, what, got[len(host):], len(host))
}

// result reads the first n elements of b, a guarded buffer of n elements,
// after checking that the guard past them is intact.
func result[T device.Element](t *testing.T, d device.Device, what string, b device.Buffer, n int) []T {
	t.Helper()
	got := download[T](t, d, b, n+guard)
	guardIntact(t, what, got[n:], n)
	return got[:n]
}

func guardIntact[T device.Element](t *testing.T, what string, g []T, n int) {
	t.Helper()
	for i, v := range g {
		if !sameBits(v, sentinel[T]()) {
			t.Errorf("%s: wrote %v to element %d, past the %d the call uses", what, v, n+i, n)
			return
		}
	}
}

func sameBits[T device.Element](a, b T) bool {
	return bytes.Equal(device.Bytes([]T{a}), device.Bytes([]T{b}))
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

// checkCopy checks host↔device round trips of every dtype and the traffic count.
func checkCopy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(1)
	for _, n := range sizes() {
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

// checkAsyncCopy checks CopyInAsync from host memory of AllocHost: compute
// issued after the copy sees the data, and the traffic is counted.
func checkAsyncCopy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	done, err := d.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sizes() {
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

// checkGemm checks every transpose combination on awkward shapes, with beta
// 0 (C's old contents, even NaN, must not leak in) and beta ≠ 0.
func checkGemm(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(2)
	// The last three are a rank-1 product, a matrix-vector one and a
	// narrow one with a long k, which the CPU device runs its own way.
	shapes := [][3]int{{1, 1, 1}, {31, 17, 5}, {3, 1000, 7}, {64, 10, 512}, {129, 65, 33}, {7, 5000, 1}, {9, 1, 5000}, {6, 25, 20000}}
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
					ab, bb, cb := guarded(t, d, a), guarded(t, d, b), guarded(t, d, c)
					d.Gemm(tA, tB, m, n, k, 1.5, ab, bb, beta, cb)
					what := fmt.Sprintf("Gemm(tA=%v,tB=%v,m=%d,n=%d,k=%d,beta=%g)", tA, tB, m, n, k, beta)
					tol := 1e-5 * math.Sqrt(float64(k)) * 4
					closeEnough(t, what+" C", result[float32](t, d, what+" C", cb, m*n), want, tol, tol)
					unchanged(t, d, what+" A", ab, a)
					unchanged(t, d, what+" B", bb, b)
					d.Free(ab)
					d.Free(bb)
					d.Free(cb)
				}
			}
		}
	}
}

// checkAddBias checks x[i,j] += bias[j].
func checkAddBias(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(3)
	for _, s := range shapes() {
		rows, cols := s[0], s[1]
		x, bias := randFloats(r, rows*cols), randFloats(r, cols)
		want := make([]float64, rows*cols)
		for i := range want {
			want[i] = float64(x[i]) + float64(bias[i%cols])
		}
		xb, bb := guarded(t, d, x), guarded(t, d, bias)
		d.AddBias(xb, bb, rows, cols)
		what := fmt.Sprintf("AddBias %dx%d", rows, cols)
		closeEnough(t, what+" x", result[float32](t, d, what+" x", xb, rows*cols), want, 1e-6, 1e-6)
		unchanged(t, d, what+" bias", bb, bias)
	}
}

// checkReLU checks y = max(x, 0), out of place and in place.
func checkReLU(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(4)
	for _, n := range sizes() {
		x := randFloats(r, n)
		want := make([]float64, n)
		for i, v := range x {
			want[i] = math.Max(float64(v), 0)
		}
		xb, yb := guarded(t, d, x), output[float32](t, d, n)
		d.ReLU(yb, xb, n)
		what := fmt.Sprintf("ReLU n=%d", n)
		closeEnough(t, what+" y", result[float32](t, d, what+" y", yb, n), want, 0, 0)
		unchanged(t, d, what+" x", xb, x)
		d.ReLU(xb, xb, n)
		what = fmt.Sprintf("ReLU in place n=%d", n)
		closeEnough(t, what+" x", result[float32](t, d, what+" x", xb, n), want, 0, 0)
	}
}

// checkReLUBackward checks dx = dy·[y > 0], including y = 0 exactly, out of
// place and in place (dx = dy).
func checkReLUBackward(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(5)
	for _, n := range sizes() {
		dy, y := randFloats(r, n), randFloats(r, n)
		y[0] = 0
		want := make([]float64, n)
		for i := range want {
			if y[i] > 0 {
				want[i] = float64(dy[i])
			}
		}
		dyb, yb, dxb := guarded(t, d, dy), guarded(t, d, y), output[float32](t, d, n)
		d.ReLUBackward(dxb, dyb, yb, n)
		what := fmt.Sprintf("ReLUBackward n=%d", n)
		closeEnough(t, what+" dx", result[float32](t, d, what+" dx", dxb, n), want, 0, 0)
		unchanged(t, d, what+" dy", dyb, dy)
		unchanged(t, d, what+" y", yb, y)
		d.ReLUBackward(dyb, dyb, yb, n)
		what = fmt.Sprintf("ReLUBackward in place n=%d", n)
		closeEnough(t, what+" dy", result[float32](t, d, what+" dy", dyb, n), want, 0, 0)
		unchanged(t, d, what+" y", yb, y)
	}
}

// checkSoftmaxCrossEntropy checks the mean loss in its slot and the
// gradient, with large logits that overflow a naive exp.
func checkSoftmaxCrossEntropy(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(6)
	for _, s := range shapes() {
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
		xb, lb := guarded(t, d, x), guarded(t, d, labels)
		gb := output[float32](t, d, rows*cols)
		losses := guarded(t, d, []float32{-1, -1, -1})
		d.SoftmaxCrossEntropy(gb, losses, xb, lb, nil, 1, rows, cols, scale)
		what := fmt.Sprintf("SoftmaxCrossEntropy %dx%d", rows, cols)
		closeEnough(t, what+" losses", result[float32](t, d, what+" losses", losses, 3), []float64{-1, loss, -1}, 1e-5, 1e-5)
		closeEnough(t, what+" grad", result[float32](t, d, what+" grad", gb, rows*cols), grad, 1e-6, 1e-5)
		unchanged(t, d, what+" logits", xb, x)
		unchanged(t, d, what+" labels", lb, labels)
		// Without a gradient buffer only the loss is written.
		d.SoftmaxCrossEntropy(nil, losses, xb, lb, nil, 2, rows, cols, scale)
		what += " loss only"
		closeEnough(t, what+" losses", result[float32](t, d, what+" losses", losses, 3), []float64{-1, loss, loss}, 1e-5, 1e-5)
		unchanged(t, d, what+" logits", xb, x)
		unchanged(t, d, what+" labels", lb, labels)
	}
}

// checkCountCorrect checks the argmax count, with ties going to the first
// index.
func checkCountCorrect(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(7)
	for _, s := range shapes() {
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
		xb, lb := guarded(t, d, x), guarded(t, d, labels)
		counts := guarded(t, d, []int32{-1, -1})
		d.CountCorrect(counts, xb, lb, 1, rows, cols)
		what := fmt.Sprintf("CountCorrect %dx%d", rows, cols)
		if got := result[int32](t, d, what+" counts", counts, 2); got[0] != -1 || int(got[1]) != want {
			t.Errorf("%s = %v, want [-1 %d]", what, got, want)
		}
		unchanged(t, d, what+" logits", xb, x)
		unchanged(t, d, what+" labels", lb, labels)
	}
}

// checkColumnSum checks dst = beta·dst + column sums, for beta 0 and 1.
func checkColumnSum(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(8)
	for _, s := range shapes() {
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
			xb, db := guarded(t, d, x), guarded(t, d, dst)
			d.ColumnSum(db, xb, rows, cols, beta)
			what := fmt.Sprintf("ColumnSum %dx%d beta=%g", rows, cols, beta)
			tol := 1e-5 * math.Sqrt(float64(rows)) * 4
			closeEnough(t, what+" dst", result[float32](t, d, what+" dst", db, cols), want, tol, tol)
			unchanged(t, d, what+" src", xb, x)
		}
	}
}

// checkMomentumSGD checks two steps of the PyTorch update rule.
func checkMomentumSGD(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(9)
	const lr, mom, wd = 0.1, 0.9, 0.01
	for _, n := range sizes() {
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
		wb, gb, vb := guarded(t, d, w), guarded(t, d, g), guarded(t, d, make([]float32, n))
		d.MomentumSGD(wb, gb, vb, nil, n, lr, mom, wd)
		d.MomentumSGD(wb, gb, vb, nil, n, lr, mom, wd)
		what := fmt.Sprintf("MomentumSGD n=%d", n)
		closeEnough(t, what+" w", result[float32](t, d, what+" w", wb, n), wantW, 1e-6, 1e-5)
		closeEnough(t, what+" velocity", result[float32](t, d, what+" velocity", vb, n), wantV, 1e-6, 1e-5)
		unchanged(t, d, what+" grad", gb, g)
	}
}

// checkDivergenceGuard checks the guard of SoftmaxCrossEntropy and
// MomentumSGD: a finite loss leaves it 0 and the update runs; the first
// non-finite loss (NaN, then +Inf) sets it to its slot + 1 and later ones
// keep that; a set guard makes the update leave w and velocity alone.
func checkDivergenceGuard(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(17)
	const rows, cols, lr, mom, wd = 31, 10, 0.1, 0.9, 0.01
	x, labels := randFloats(r, rows*cols), randLabels(r, rows, cols)
	nan := append([]float32(nil), x...)
	nan[3*cols+1] = float32(math.NaN())
	inf := append([]float32(nil), x...)
	inf[5*cols+int(labels[5])] = float32(math.Inf(-1)) // the label's logit: the loss is +Inf
	lb, flag := guarded(t, d, labels), guarded(t, d, []int32{0})
	losses := output[float32](t, d, 4)
	for _, c := range []struct {
		what   string
		logits []float32
		slot   int
		want   int32
	}{{"a finite loss", x, 0, 0}, {"a NaN loss", nan, 2, 3}, {"a later +Inf loss", inf, 1, 3}} {
		xb := guarded(t, d, c.logits)
		d.SoftmaxCrossEntropy(nil, losses, xb, lb, flag, c.slot, rows, cols, 1)
		what := "SoftmaxCrossEntropy after " + c.what
		if got := result[int32](t, d, what+" guard", flag, 1); got[0] != c.want {
			t.Errorf("%s: guard %d, want %d", what, got[0], c.want)
		}
		unchanged(t, d, what+" logits", xb, c.logits)
		unchanged(t, d, what+" labels", lb, labels)
	}
	if got := result[float32](t, d, "losses", losses, 4); !math.IsNaN(float64(got[2])) || !math.IsInf(float64(got[1]), 1) {
		t.Errorf("losses %v, want NaN in slot 2 and +Inf in slot 1", got)
	}

	const n = 1000
	w, g, v := randFloats(r, n), randFloats(r, n), randFloats(r, n)
	wantW, wantV := make([]float64, n), make([]float64, n)
	for i := range w {
		wantV[i] = mom*float64(v[i]) + float64(g[i]) + wd*float64(w[i])
		wantW[i] = float64(w[i]) - lr*wantV[i]
	}
	wb, gb, vb, unset := guarded(t, d, w), guarded(t, d, g), guarded(t, d, v), guarded(t, d, []int32{0})
	d.MomentumSGD(wb, gb, vb, unset, n, lr, mom, wd)
	what := "MomentumSGD with a clear guard"
	closeEnough(t, what+" w", result[float32](t, d, what+" w", wb, n), wantW, 1e-6, 1e-5)
	closeEnough(t, what+" velocity", result[float32](t, d, what+" velocity", vb, n), wantV, 1e-6, 1e-5)
	unchanged(t, d, what+" guard", unset, []int32{0})
	w, v = result[float32](t, d, what+" w", wb, n), result[float32](t, d, what+" velocity", vb, n)
	d.MomentumSGD(wb, gb, vb, flag, n, lr, mom, wd)
	what = "MomentumSGD with a set guard"
	unchanged(t, d, what+" w", wb, w)
	unchanged(t, d, what+" velocity", vb, v)
	unchanged(t, d, what+" grad", gb, g)
	unchanged(t, d, what+" guard", flag, []int32{3})
}

// checkNormalizeBytes checks dst = scale·src + shift over every byte value.
func checkNormalizeBytes(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	for _, n := range sizes() {
		src := make([]uint8, n)
		want := make([]float64, n)
		for i := range src {
			src[i] = uint8(i * 7)
			want[i] = float64(float32(1.0/255)*float32(src[i])) - 0.5
		}
		sb, db := guarded(t, d, src), output[float32](t, d, n)
		d.NormalizeBytes(db, sb, n, 1.0/255, -0.5)
		what := fmt.Sprintf("NormalizeBytes n=%d", n)
		closeEnough(t, what+" dst", result[float32](t, d, what+" dst", db, n), want, 1e-6, 1e-6)
		unchanged(t, d, what+" src", sb, src)
	}
}

// checkGatherRows checks dst[i,:] = src[idx[i],:] for float32 and uint8
// rows, with repeated and out-of-order indices.
func checkGatherRows(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(10)
	for _, s := range shapes() {
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
		ib := guarded(t, d, idx)
		sb, sub := guarded(t, d, src), guarded(t, d, srcU)
		db, dub := output[float32](t, d, rows*rowLen), output[uint8](t, d, rows*rowLen)
		d.GatherRows(db, sb, ib, rows, rowLen)
		d.GatherRows(dub, sub, ib, rows, rowLen)
		what := fmt.Sprintf("GatherRows float32 %dx%d", rows, rowLen)
		closeEnough(t, what+" dst", result[float32](t, d, what+" dst", db, rows*rowLen), want, 0, 0)
		unchanged(t, d, what+" src", sb, src)
		what = fmt.Sprintf("GatherRows uint8 %dx%d", rows, rowLen)
		gotU := result[uint8](t, d, what+" dst", dub, rows*rowLen)
		for i := range gotU {
			if gotU[i] != wantU[i] {
				t.Fatalf("%s: element %d = %d, want %d", what, i, gotU[i], wantU[i])
			}
		}
		unchanged(t, d, what+" src", sub, srcU)
		unchanged(t, d, fmt.Sprintf("GatherRows %dx%d idx", rows, rowLen), ib, idx)
	}
}

// checkZero checks that Zero clears every element of a buffer of each
// dtype, and nothing else: a buffer allocated after it keeps its contents.
func checkZero(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(11)
	for _, n := range sizes() {
		f := randFloats(r, n)
		u, l := make([]uint8, n), make([]int32, n)
		for i := range u {
			u[i], l[i] = uint8(1+r.IntN(255)), int32(1+r.IntN(1<<30))
		}
		zeroed(t, d, fmt.Sprintf("Zero float32 n=%d", n), f)
		zeroed(t, d, fmt.Sprintf("Zero uint8 n=%d", n), u)
		zeroed(t, d, fmt.Sprintf("Zero int32 n=%d", n), l)
	}
}

// zeroed uploads host, and a neighbour after it, zeroes the first and
// checks both.
func zeroed[T device.Element](t *testing.T, d device.Device, what string, host []T) {
	t.Helper()
	b := upload(t, d, dtypeOf[T](), host)
	next := guarded(t, d, host)
	d.Zero(b)
	for i, v := range download[T](t, d, b, len(host)) {
		if v != 0 {
			t.Errorf("%s: element %d is %v", what, i, v)
			break
		}
	}
	unchanged(t, d, what+", the next buffer", next, host)
	d.Free(b)
	d.Free(next)
}

// checkEvents checks that the time between two events brackets real work.
func checkEvents(t *testing.T, newDevice NewDevice) {
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

// checkBadArguments checks that a wrong shape or dtype becomes the device's
// error, naming the call, and that later calls are skipped, not run.
func checkBadArguments(t *testing.T, newDevice NewDevice) {
	cases := []struct {
		name string
		call func(d device.Device, f10, f4 device.Buffer, i4 device.Buffer)
	}{
		{"Gemm", func(d device.Device, f10, f4, _ device.Buffer) { d.Gemm(false, false, 3, 3, 3, 1, f10, f10, 0, f4) }},
		{"ReLU", func(d device.Device, f10, _, i4 device.Buffer) { d.ReLU(f10, i4, 4) }},
		{"AddBias", func(d device.Device, f10, f4, _ device.Buffer) { d.AddBias(f4, f10, 2, 3) }},
		{"SoftmaxCrossEntropy", func(d device.Device, f10, f4, i4 device.Buffer) {
			d.SoftmaxCrossEntropy(nil, f4, f10, i4, nil, 4, 2, 5, 1)
		}},
		// Bad values inside buffers: a GPU finds them in its kernels and
		// reports them at Sync.
		{"SoftmaxCrossEntropy", func(d device.Device, f10, f4, i4 device.Buffer) {
			device.Upload(d, i4, []int32{1, 5}) // 5 classes: label 5 is outside
			d.SoftmaxCrossEntropy(nil, f4, f10, i4, nil, 0, 2, 5, 1)
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
