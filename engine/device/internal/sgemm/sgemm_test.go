package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// ref is C = alpha·op(A)·op(B) + beta·C in float64, row-major.
func ref(tA, tB bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				var av, bv float32
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = alpha * s
			if beta != 0 {
				out[i*n+j] += beta * float64(c[i*ldc+j])
			}
		}
	}
	return out
}

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// product is one test case: its operands, stored with row lengths that may
// exceed what the product uses.
type product struct {
	tA, tB        bool
	m, n, k       int
	alpha, beta   float32
	a, b, c       []float32
	lda, ldb, ldc int
}

func newProduct(r *rand.Rand, tA, tB bool, m, n, k, pad int, alpha, beta float32) product {
	p := product{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	rowsA, rowsB := m, k
	p.lda, p.ldb = k+pad, n+pad
	if tA {
		rowsA, p.lda = k, m+pad
	}
	if tB {
		rowsB, p.ldb = n, k+pad
	}
	p.ldc = n + pad
	p.a, p.b, p.c = randFloats(r, rowsA*p.lda), randFloats(r, rowsB*p.ldb), randFloats(r, m*p.ldc)
	if beta == 0 {
		p.c[0] = float32(math.NaN()) // must not leak into the result
	}
	return p
}

func (p product) run(w *Work, c []float32) {
	w.Sgemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc)
}

// shapes are around every blocking boundary: edge tiles (m%6, n%16), more than
// one panel of k (kc), of rows (mc) and of columns (nc), and the MLP's.
var shapes = [][3]int{
	{1, 1, 1}, {5, 15, 3}, {6, 16, 1}, {7, 17, 257}, {13, 33, 512}, {121, 50, 70},
	{32, 512, 784}, {784, 512, 32}, {40, 1030, 20}, {250, 130, 600},
}

func testProducts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w Work
	for _, s := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					p := newProduct(r, tA, tB, s[0], s[1], s[2], 3, 1.5, beta)
					want := ref(tA, tB, p.m, p.n, p.k, float64(p.alpha), p.a, p.lda, p.b, p.ldb, float64(beta), p.c, p.ldc)
					a, b, c := slices.Clone(p.a), slices.Clone(p.b), slices.Clone(p.c)
					p.run(&w, c)
					if !slices.Equal(a, p.a) || !slices.Equal(b, p.b) {
						t.Fatalf("m,n,k=%v tA=%v tB=%v: Sgemm changed A or B", s, tA, tB)
					}
					tol := 1e-5 * math.Sqrt(float64(p.k)) * 4
					bad := 0
					for i := range p.m {
						for j := range p.ldc {
							got := float64(c[i*p.ldc+j])
							if j >= p.n { // padding: untouched
								if c[i*p.ldc+j] != p.c[i*p.ldc+j] {
									t.Fatalf("%v: wrote C[%d,%d] outside the product", s, i, j)
								}
								continue
							}
							if w := want[i*p.n+j]; math.IsNaN(got) || math.Abs(got-w) > tol*(1+math.Abs(w)) {
								bad++
								if bad < 4 {
									t.Errorf("m,n,k=%v tA=%v tB=%v beta=%g: C[%d,%d] = %g, want %g", s, tA, tB, beta, i, j, got, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestSgemmBlocksAgree: a product computed in blocks of C, as the CPU device
// splits it across goroutines, has the same bits as computed whole.
func TestSgemmBlocksAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var w Work
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			p := newProduct(r, tA, tB, 130, 100, 300, 0, 1, 0)
			whole := slices.Clone(p.c)
			p.run(&w, whole)
			blocks := slices.Clone(p.c)
			for _, cut := range [][4]int{{0, 48, 0, 100}, {48, 130, 0, 48}, {48, 130, 48, 100}} {
				i0, i1, j0, j1 := cut[0], cut[1], cut[2], cut[3]
				a, b := p.a[i0*p.lda:], p.b[j0:]
				if tA {
					a = p.a[i0:]
				}
				if tB {
					b = p.b[j0*p.ldb:]
				}
				w.Sgemm(tA, tB, i1-i0, j1-j0, p.k, p.alpha, a, p.lda, b, p.ldb, p.beta, blocks[i0*p.ldc+j0:], p.ldc)
			}
			if !slices.Equal(whole, blocks) {
				t.Errorf("tA=%v tB=%v: blocks differ from the whole product", tA, tB)
			}
		}
	}
}

// TestSgemmAllocs: a product allocates only while the buffers grow.
func TestSgemmAllocs(t *testing.T) {
	p := newProduct(rand.New(rand.NewPCG(5, 6)), false, false, 64, 512, 784, 0, 1, 0)
	var w Work
	c := make([]float32, len(p.c))
	p.run(&w, c)
	if n := testing.AllocsPerRun(10, func() { p.run(&w, c) }); n != 0 {
		t.Errorf("%v allocations per product", n)
	}
}

// BenchmarkSgemm times one goroutine on the MLP 784-512-512-10's products.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, batch := range []int{32, 128, 512, 2048} {
		for _, s := range []struct {
			name    string
			tA, tB  bool
			m, n, k int
		}{
			{"x·W1", false, false, batch, 512, 784},
			{"xᵀ·dy", true, false, 784, 512, batch},
			{"dy·W2ᵀ", false, true, batch, 512, 512},
		} {
			b.Run(fmt.Sprintf("batch=%d/op=%s", batch, s.name), func(b *testing.B) {
				p := newProduct(r, s.tA, s.tB, s.m, s.n, s.k, 0, 1, 0)
				var w Work
				for b.Loop() {
					p.run(&w, p.c)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
