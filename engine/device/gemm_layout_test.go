package device

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// rowMajorGemm is C = alpha·op(A)·op(B) + beta·C, row-major, contiguous.
func rowMajorGemm(transA, transB bool, m, n, k int, alpha float64, a, b []float64, beta float64, c []float64) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*k+p]
				if transA {
					av = a[p*m+i]
				}
				bv := b[p*n+j]
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			c[i*n+j] = alpha*s + beta*c[i*n+j]
		}
	}
}

// colMajorGemmRef is the reference BLAS sgemm, column-major with leading
// dimensions, with cuBLAS's checks of those leading dimensions.
func colMajorGemmRef(t *testing.T, g colMajorGemm, alpha float64, a, b []float64, beta float64, c []float64) {
	t.Helper()
	rowsA, rowsB := g.M, g.K // rows of the operands as stored, column-major
	if g.TransA {
		rowsA = g.K
	}
	if g.TransB {
		rowsB = g.N
	}
	if g.LDA < max(1, rowsA) || g.LDB < max(1, rowsB) || g.LDC < max(1, g.M) {
		t.Fatalf("%+v: a leading dimension is too small for cuBLAS", g)
	}
	at := func(i, p int) float64 { // op(first)[i,p]
		if g.TransA {
			return a[p+i*g.LDA]
		}
		return a[i+p*g.LDA]
	}
	bt := func(p, j int) float64 { // op(second)[p,j]
		if g.TransB {
			return b[j+p*g.LDB]
		}
		return b[p+j*g.LDB]
	}
	for j := 0; j < g.N; j++ {
		for i := 0; i < g.M; i++ {
			var s float64
			for p := 0; p < g.K; p++ {
				s += at(i, p) * bt(p, j)
			}
			c[i+j*g.LDC] = alpha*s + beta*c[i+j*g.LDC]
		}
	}
}

// TestRowMajorToColMajor runs the mapped column-major call, with B and A
// swapped, on the row-major buffers and compares it with the row-major
// product. Small integers keep both sums exact.
func TestRowMajorToColMajor(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ints := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(r.IntN(7) - 3)
		}
		return x
	}
	for _, s := range [][3]int{{1, 1, 1}, {2, 3, 4}, {5, 1, 3}, {1, 6, 2}, {7, 5, 1}, {4, 4, 4}} {
		m, n, k := s[0], s[1], s[2]
		for _, transA := range []bool{false, true} {
			for _, transB := range []bool{false, true} {
				t.Run(fmt.Sprintf("m=%d/n=%d/k=%d/tA=%v/tB=%v", m, n, k, transA, transB), func(t *testing.T) {
					a, b, c := ints(m*k), ints(k*n), ints(m*n)
					want := append([]float64(nil), c...)
					rowMajorGemm(transA, transB, m, n, k, 2, a, b, 3, want)
					g := rowMajorToColMajor(transA, transB, m, n, k)
					colMajorGemmRef(t, g, 2, b, a, 3, c)
					for i := range c {
						if c[i] != want[i] {
							t.Fatalf("%+v: C[%d] = %g, want %g", g, i, c[i], want[i])
						}
					}
				})
			}
		}
	}
}
