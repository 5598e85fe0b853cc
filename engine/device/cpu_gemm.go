package device

import "github.com/batchlab/batchlab/engine/device/internal/sgemm"

// GEMM on the CPU. A product is split into column or row blocks of C, one
// per worker goroutine (see cpu_pool.go), and each block is multiplied by a
// single-threaded SGEMM: OpenBLAS's with -tags openblas (cpu_openblas.go),
// else the Go one of package sgemm (cpu_gemm_go.go). The split is a
// function of the shapes and of GOMAXPROCS only, never of timing, so a run
// repeats bit for bit. With the Go SGEMM every element of C is summed over
// k in the same order whatever the split, so its bits do not even depend on
// GOMAXPROCS; OpenBLAS's edge kernels may round a block differently.

// gemmArgs is one row-major GEMM, C = alpha·op(A)·op(B) + beta·C, with op(A)
// m×k, op(B) k×n and C m×n; lda, ldb and ldc are the row lengths of A, B and
// C as stored. k > 0.
type gemmArgs struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
}

// sub is the same product restricted to rows [i0,i1) and columns [j0,j1)
// of C: the matching rows of op(A) and columns of op(B).
func (g gemmArgs) sub(i0, i1, j0, j1 int) gemmArgs {
	s := g
	s.m, s.n = i1-i0, j1-j0
	if g.transA {
		s.a = g.a[i0:]
	} else {
		s.a = g.a[i0*g.lda:]
	}
	if g.transB {
		s.b = g.b[j0*g.ldb:]
	} else {
		s.b = g.b[j0:]
	}
	s.c = g.c[i0*g.ldc+j0:]
	return s
}

const (
	// gemmAlign is what blocks of C are cut at: 16 floats, a cache line
	// and the width of the Go kernel's tiles. Coarser cuts left the parts
	// of the MLP's 512-wide products 13% apart.
	gemmAlign = 16
	// gemmMinFlops is the least work worth a block of its own (2 MFLOP,
	// 10 µs on one core): below it handing a block to a helper, which
	// takes a few µs, is not paid back.
	gemmMinFlops = 1 << 21
)

// gemmTask multiplies block part of parts of C.
type gemmTask struct {
	g      gemmArgs
	byRows bool
	work   []sgemm.Work // the Go SGEMM's packing buffers, one per part
}

func (t *gemmTask) run(part, parts int) {
	g := t.g
	if t.byRows {
		lo, hi := span(g.m, part, parts, gemmAlign)
		g = g.sub(lo, hi, 0, g.n)
	} else {
		lo, hi := span(g.n, part, parts, gemmAlign)
		g = g.sub(0, g.m, lo, hi)
	}
	if g.m > 0 && g.n > 0 {
		serialGemm(&t.work[part], g)
	}
}

// gemm runs g split across the workers. p and t are the device's.
func gemm(p *passes, t *gemmTask, g gemmArgs) {
	parts := 1
	if gemmSplits {
		byRows := g.m > g.n
		long := g.n
		if byRows {
			long = g.m
		}
		flops := 2 * g.m * g.n * g.k
		parts = max(1, min(workers(), flops/gemmMinFlops, long/gemmAlign))
		t.byRows = byRows
	}
	for len(t.work) < parts {
		t.work = append(t.work, sgemm.Work{})
	}
	t.g = g
	p.parallel(parts, t)
	t.g = gemmArgs{} // keep no reference to the buffers
}
