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

// gemmTasks are the CPU device's GEMM passes, kept so that a call
// allocates nothing: blocks of C for most products, and three shapes that
// a BLAS runs at a fraction of the memory's speed, which a conv's bias,
// bias gradient and first weight gradient have (6.9 ms of LeNet-5's 21 ms
// step at batch 128 before, on the 2-core reference machine).
type gemmTasks struct {
	blocks gemmTask
	rank1  rank1Task
	gemv   gemvTask
	depth  depthTask
}

// gemm runs g split across the workers. p and t are the device's.
func gemm(p *passes, t *gemmTasks, g gemmArgs) {
	switch {
	case !gemmSplits: // OpenBLAS threads by itself
	case g.k == 1:
		t.rank1 = rank1Task{g}
		p.parallel(max(1, min(workers(), g.m*g.n/minPart, g.m)), &t.rank1)
		t.rank1 = rank1Task{}
		return
	case g.n == 1 && !g.transA:
		t.gemv = gemvTask{g}
		p.parallel(max(1, min(workers(), g.m*g.k/minPart, g.m)), &t.gemv)
		t.gemv = gemvTask{}
		return
	case splitsDepth(g):
		t.depth.runOn(p, g)
		return
	}
	blocks(p, &t.blocks, g)
}

// blocks runs g split into blocks of C.
func blocks(p *passes, t *gemmTask, g gemmArgs) {
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

// rank1Task is a product of depth 1, C = alpha·a·bᵀ + beta·C (a conv's
// bias, b the ones), split by rows of C. op(A) and op(B) are then vectors
// however they are stored.
type rank1Task struct{ g gemmArgs }

func (t *rank1Task) run(part, parts int) {
	g := t.g
	lo, hi := span(g.m, part, parts, 1)
	for i := lo; i < hi; i++ {
		ai := g.alpha * g.a[i]
		row := g.c[i*g.ldc:][:g.n]
		b := g.b[:g.n]
		if g.beta == 0 { // C is not read, as in BLAS
			for j := range row {
				row[j] = ai * b[j]
			}
			continue
		}
		for j := range row {
			row[j] = ai*b[j] + g.beta*row[j]
		}
	}
}

// gemvTask is a product with one column, c = alpha·A·b + beta·c (a conv's
// bias gradient, b the ones), split by rows of A.
type gemvTask struct{ g gemmArgs }

func (t *gemvTask) run(part, parts int) {
	g := t.g
	lo, hi := span(g.m, part, parts, 1)
	for i := lo; i < hi; i++ {
		v := g.alpha * dot(g.a[i*g.lda:][:g.k], g.b[:g.k])
		if g.beta != 0 {
			v += g.beta * g.c[i*g.ldc]
		}
		g.c[i*g.ldc] = v
	}
}

// dot sums a[i]·b[i] in eight running sums, element i into sum i mod 8
// (the tail into the first), then adds them pairwise: a fixed order, and eight independent adds at a
// time instead of one chain. Each product is rounded (float32(…)), so the
// compiler fuses no multiply-add and the bits are the same on every CPU.
func dot(a, b []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	b = b[:len(a)]
	i := 0
	for ; i+8 <= len(a); i += 8 {
		a8, b8 := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += float32(a8[0] * b8[0])
		s1 += float32(a8[1] * b8[1])
		s2 += float32(a8[2] * b8[2])
		s3 += float32(a8[3] * b8[3])
		s4 += float32(a8[4] * b8[4])
		s5 += float32(a8[5] * b8[5])
		s6 += float32(a8[6] * b8[6])
		s7 += float32(a8[7] * b8[7])
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i] * b[i])
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

const (
	// depthChunk is the depth of each partial product of a product split
	// over k.
	depthChunk = 8192
	// maxDepthChunks bounds the partial products, which are m·n each.
	maxDepthChunks = 64
)

// splitsDepth reports whether g is split over k: a C too small to cut into
// a block per worker (a conv's weight gradient, such as LeNet-5's first,
// 6×25 summed over 128·784 columns at batch 128) and a long k. It depends
// on the shape alone, so a product is summed in the same order whatever
// GOMAXPROCS is.
func splitsDepth(g gemmArgs) bool {
	return max(g.m, g.n) < 2*gemmAlign && g.k >= 2*depthChunk && 2*g.m*g.n*g.k >= 2*gemmMinFlops
}

// depthTask runs a product split over k: chunk c is the partial product
// over k in [c·k/chunks, (c+1)·k/chunks), into its own m×n block of
// partial; then C = alpha·(((P0 + P1) + P2) + …) + beta·C. The chunks are
// a function of the shape, so the bits do not depend on which worker runs
// which chunk, or on how many workers there are.
type depthTask struct {
	g       gemmArgs
	chunks  int
	partial []float32
	work    []sgemm.Work // one per part
}

func (t *depthTask) runOn(p *passes, g gemmArgs) {
	// An even number of chunks, a multiple of 4 from 4 on, so that 2 or 4
	// workers get as many each: 3 chunks on 2 cores took as long as 4.
	t.g, t.chunks = g, min(maxDepthChunks, g.k/depthChunk)
	if t.chunks >= 4 {
		t.chunks &^= 3
	} else {
		t.chunks = 2
	}
	if n := t.chunks * g.m * g.n; cap(t.partial) < n {
		t.partial = make([]float32, n)
	}
	parts := min(workers(), t.chunks)
	for len(t.work) < parts {
		t.work = append(t.work, sgemm.Work{})
	}
	p.parallel(parts, t)
	mn := g.m * g.n
	for i := range g.m {
		for j := range g.n {
			sum := t.partial[i*g.n+j]
			for c := 1; c < t.chunks; c++ {
				sum += t.partial[c*mn+i*g.n+j]
			}
			v := g.alpha * sum
			if g.beta != 0 {
				v += g.beta * g.c[i*g.ldc+j]
			}
			g.c[i*g.ldc+j] = v
		}
	}
	t.g = gemmArgs{}
}

// run computes the partial products of chunks [part·chunks/parts, …).
func (t *depthTask) run(part, parts int) {
	g := t.g
	lo, hi := span(t.chunks, part, parts, 1)
	for c := lo; c < hi; c++ {
		k0, k1 := span(g.k, c, t.chunks, 1)
		s := g
		s.k, s.alpha, s.beta = k1-k0, 1, 0
		if g.transA { // A is k×m
			s.a = g.a[k0*g.lda:]
		} else {
			s.a = g.a[k0:]
		}
		if g.transB { // B is n×k
			s.b = g.b[k0:]
		} else {
			s.b = g.b[k0*g.ldb:]
		}
		s.c, s.ldc = t.partial[c*g.m*g.n:][:g.m*g.n], g.n
		serialGemm(&t.work[part], s)
	}
}
