package device

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine/device/internal/sgemm"
)

// The CPU device's passes are split across goroutines by size. These tests
// run each split task in 1 to 4 parts and check that the results are the
// same, bit for bit: the split may change the speed, never the numbers.
// OpenBLAS is the exception: a product split differently may round
// differently, so there the check is that a split repeats its bits (the
// split depends on the shapes and GOMAXPROCS only, so a run repeats).

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// sameForAnySplit runs, for parts = 1…4, reset (which restores the inputs
// and fills the task) then the task, and compares out() with parts = 1.
// With onlyRepeat it compares each split with itself, run again.
func sameForAnySplit(t *testing.T, name string, tk task, reset func(), out func() []float32, onlyRepeat ...bool) {
	t.Helper()
	var ps passes
	var want []float32
	for parts := 1; parts <= 4; parts++ {
		reset()
		ps.parallel(parts, tk)
		got := slices.Clone(out())
		if len(onlyRepeat) > 0 && onlyRepeat[0] {
			reset()
			ps.parallel(parts, tk)
			if !slices.Equal(out(), got) {
				t.Errorf("%s: %d parts give other numbers when run again", name, parts)
			}
			continue
		}
		if parts == 1 {
			want = got
		} else if !slices.Equal(got, want) {
			t.Errorf("%s: %d parts give other numbers than 1", name, parts)
		}
	}
}

func TestSplitsGiveSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const rows, cols = 300, 130
	x, dy, y := randSlice(r, rows*cols), randSlice(r, rows*cols), randSlice(r, rows*cols)
	bias, w0, g, v0 := randSlice(r, cols), randSlice(r, rows*cols), randSlice(r, rows*cols), randSlice(r, rows*cols)
	buf := make([]float32, rows*cols)
	small := make([]float32, cols)
	labels := make([]int32, rows)
	for i := range labels {
		labels[i] = int32(r.IntN(cols))
	}

	ab := &addBiasTask{}
	sameForAnySplit(t, "AddBias", ab, func() { copy(buf, x); *ab = addBiasTask{buf, bias, rows, cols} }, func() []float32 { return buf })
	rt := &reluTask{}
	sameForAnySplit(t, "ReLU", rt, func() { *rt = reluTask{buf, x} }, func() []float32 { return buf })
	rb := &reluBackwardTask{}
	sameForAnySplit(t, "ReLUBackward", rb, func() { *rb = reluBackwardTask{buf, dy, y} }, func() []float32 { return buf })
	cs := &columnSumTask{}
	sameForAnySplit(t, "ColumnSum", cs, func() { copy(small, bias); *cs = columnSumTask{small, x, rows, cols, 1} }, func() []float32 { return small })
	wv := make([]float32, 2*rows*cols)
	mt := &momentumTask{}
	sameForAnySplit(t, "MomentumSGD", mt, func() {
		copy(wv, w0)
		copy(wv[rows*cols:], v0)
		*mt = momentumTask{wv[:rows*cols], g, wv[rows*cols:], 0.1, 0.9, 0.01}
	}, func() []float32 { return wv })
	st := &softmaxTask{}
	blocks := (rows + softmaxBlock - 1) / softmaxBlock
	sameForAnySplit(t, "SoftmaxCrossEntropy", st, func() {
		*st = softmaxTask{grad: buf, x: x, labels: labels, rows: rows, cols: cols, gradScale: 0.5,
			blockLoss: make([]float64, blocks), badRow: make([]int, 4)}
	}, func() []float32 {
		out := slices.Clone(buf)
		for _, l := range st.blockLoss {
			out = append(out, float32(l), float32(l-float64(float32(l))))
		}
		return out
	})

	wide := gemmArgs{m: 7, n: 30, k: 1, alpha: 1.5, beta: 0.5, a: x[:7], lda: 1, b: y[:30], ldb: 30, c: buf[:210], ldc: 30}
	r1 := &rank1Task{}
	sameForAnySplit(t, "Gemm rank 1", r1, func() { copy(buf, x); *r1 = rank1Task{wide} }, func() []float32 { return buf[:210] })
	tall := gemmArgs{m: 9, n: 1, k: 4000, alpha: 1.5, beta: 0.5, a: x[:9*4000], lda: 4000, b: y[:4000], ldb: 1, c: buf[:9], ldc: 1}
	mv := &gemvTask{}
	sameForAnySplit(t, "Gemm matrix-vector", mv, func() { copy(buf, x); *mv = gemvTask{tall} }, func() []float32 { return buf[:9] })
	// Split over k, each part's partial products are the same bits.
	deep := gemmArgs{transB: true, m: 6, n: 5, k: 3 * 1000, alpha: 1, a: x[:6*3000], lda: 3000, b: y[:5*3000], ldb: 3000, c: buf[:30], ldc: 5}
	dt := &depthTask{}
	sameForAnySplit(t, "Gemm over k", dt, func() {
		*dt = depthTask{g: deep, chunks: 3, partial: make([]float32, 3*30), work: make([]sgemm.Work, 4)}
	}, func() []float32 { return dt.partial })

	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}} {
		for _, byRows := range []bool{false, true} {
			tA, tB := tr[0], tr[1]
			m, n, k := 200, 150, 300
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			lda, ldb := k, n
			if tA {
				lda = m
			}
			if tB {
				ldb = k
			}
			c := make([]float32, m*n)
			gt := &gemmTask{work: make([]sgemm.Work, 4)}
			sameForAnySplit(t, "Gemm", gt, func() {
				clear(c)
				gt.g = gemmArgs{transA: tA, transB: tB, m: m, n: n, k: k, alpha: 1, beta: 0, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: n}
				gt.byRows = byRows
			}, func() []float32 {
				for i, v := range c {
					if math.IsNaN(float64(v)) {
						t.Fatalf("Gemm: NaN at %d", i)
					}
				}
				return c
			}, CPUGemm == "openblas") // OpenBLAS's edge kernels round differently: its bits depend on the split
		}
	}
}
