package device

// colMajorGemm is a BLAS gemm call in column-major terms (cuBLAS's): C is
// M×N with leading dimension LDC, op(first) is M×K, op(second) is K×N.
type colMajorGemm struct {
	TransA, TransB bool // transpose the first, the second operand
	M, N, K        int
	LDA, LDB, LDC  int // leading dimensions of the first, second operand and C
}

// rowMajorToColMajor maps the row-major Gemm of the Device interface,
// C = op(A)·op(B) with op(A) m×k, op(B) k×n, all contiguous, onto a
// column-major BLAS call. This is the one place the mapping is made.
//
// A contiguous row-major r×c matrix is, read column-major, its c×r
// transpose with leading dimension c. So the row-major m×n C is the
// column-major n×m Cᵀ with LDC = n, and row-major C = op(A)·op(B) is
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: call sgemm with B as the first operand
// and A as the second, and m and n swapped. Each operand keeps its own
// transpose flag: B read column-major is already Bᵀ, so op(B)ᵀ needs a
// transpose exactly when op(B) does. A leading dimension is the row length
// of the operand as stored: B is stored k×n (n per row), or n×k when
// transposed (k per row); A is stored m×k (k per row), or k×m (m per row).
//
// The caller passes B then A to the column-major gemm. k must be positive
// (BLAS leading dimensions must be at least 1).
func rowMajorToColMajor(transA, transB bool, m, n, k int) colMajorGemm {
	g := colMajorGemm{TransA: transB, TransB: transA, M: n, N: m, K: k, LDA: n, LDB: k, LDC: n}
	if transB {
		g.LDA = k
	}
	if transA {
		g.LDB = m
	}
	return g
}
