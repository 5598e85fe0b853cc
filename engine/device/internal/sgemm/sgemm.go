// Package sgemm is a single-threaded float32 GEMM in Go, the CPU device's
// where OpenBLAS is not built in.
//
// gonum's Sgemm, the obvious library, runs 4-wide SSE without FMA (11–12
// GFLOP/s on two cores of the reference machine) and starts goroutines and
// channels on every call; no maintained pure-Go library has a faster one,
// hence this package. It is the textbook blocked algorithm (Goto and van de
// Geijn, as in BLIS): op(B) is packed in panels of kc rows, op(A) in blocks
// of mc×kc, both into slivers laid out in the order the micro-kernel reads
// them, and the micro-kernel computes a 6×16 tile of C in registers, in
// AVX2+FMA assembly on amd64 (kernel_amd64.s) or plain Go elsewhere, where
// the CPU lacks AVX2 or FMA, or in a build with -tags purego. Each
// element of C is summed over k in the same order whatever its position,
// so a product split into blocks of C gives the same bits.
package sgemm

const (
	mr = 6    // rows of a micro-tile
	nr = 16   // columns of a micro-tile
	kc = 256  // depth of a packed panel: a 16-column sliver of B fills 16 KiB of L1
	mc = 120  // rows of a packed block of A: 120 KiB, in L2
	nc = 1024 // columns of a packed panel of B: 1 MiB, in L2
)

// Work is one goroutine's packing buffers, kept between calls so that a
// steady-state product allocates nothing. The zero Work is ready to use.
type Work struct {
	a, b []float32
	tile [mr * nr]float32 // edge tiles are computed here, then copied
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C on the calling goroutine,
// row-major: op(A) is m×k, op(B) k×n and C m×n, and lda, ldb and ldc are
// the row lengths of A, B and C as stored. With beta 0, C is not read.
// m, n and k must be positive.
func (w *Work) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := args{transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc}
	for jc := 0; jc < g.n; jc += nc {
		nb := min(nc, g.n-jc)
		for pc := 0; pc < g.k; pc += kc {
			kb := min(kc, g.k-pc)
			// The first panel applies beta; later ones add to it.
			betaP := beta
			if pc > 0 {
				betaP = 1
			}
			w.b = grow(w.b, roundUp(nb, nr)*kb)
			packB(w.b, g, pc, kb, jc, nb)
			for ic := 0; ic < g.m; ic += mc {
				mb := min(mc, g.m-ic)
				w.a = grow(w.a, roundUp(mb, mr)*kb)
				packA(w.a, g, ic, mb, pc, kb)
				for jr := 0; jr < nb; jr += nr {
					for ir := 0; ir < mb; ir += mr {
						a := w.a[ir*kb:]
						b := w.b[jr*kb:]
						ci := (ic+ir)*g.ldc + jc + jr
						rows, cols := min(mr, mb-ir), min(nr, nb-jr)
						if rows == mr && cols == nr {
							microKernel(kb, a, b, g.c[ci:], g.ldc, g.alpha, betaP)
							continue
						}
						microKernel(kb, a, b, w.tile[:], nr, 1, 0)
						for i := range rows {
							crow := g.c[ci+i*g.ldc : ci+i*g.ldc+cols]
							for j := range crow {
								v := g.alpha * w.tile[i*nr+j]
								if betaP != 0 {
									v += betaP * crow[j]
								}
								crow[j] = v
							}
						}
					}
				}
			}
		}
	}
}

// args is one product, as Sgemm describes it.
type args struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	c              []float32
	ldc            int
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// packA packs rows [ic, ic+mb) and columns [pc, pc+kb) of op(A) as slivers
// of mr rows: dst[s·mr·kb + p·mr + i] = op(A)[ic+s·mr+i, pc+p], zero past mb.
func packA(dst []float32, g args, ic, mb, pc, kb int) {
	for s := 0; s < mb; s += mr {
		sliver := dst[s*kb : (s+mr)*kb]
		rows := min(mr, mb-s)
		if rows < mr {
			clear(sliver)
		}
		if g.transA { // A is k×m: a sliver's column is contiguous
			for p := range kb {
				src := g.a[(pc+p)*g.lda+ic+s:]
				copy(sliver[p*mr:p*mr+rows], src[:rows])
			}
			continue
		}
		for i := range rows {
			src := g.a[(ic+s+i)*g.lda+pc:]
			src = src[:kb]
			for p, v := range src {
				sliver[p*mr+i] = v
			}
		}
	}
}

// packB packs rows [pc, pc+kb) and columns [jc, jc+nb) of op(B) as slivers
// of nr columns: dst[s·nr·kb + p·nr + j] = op(B)[pc+p, jc+s·nr+j], zero past nb.
func packB(dst []float32, g args, pc, kb, jc, nb int) {
	for s := 0; s < nb; s += nr {
		sliver := dst[s*kb : (s+nr)*kb]
		cols := min(nr, nb-s)
		if cols < nr {
			clear(sliver)
		}
		if !g.transB { // B is k×n: a sliver's row is contiguous
			for p := range kb {
				src := g.b[(pc+p)*g.ldb+jc+s:]
				copy(sliver[p*nr:p*nr+cols], src[:cols])
			}
			continue
		}
		for j := range cols {
			src := g.b[(jc+s+j)*g.ldb+pc:]
			src = src[:kb]
			for p, v := range src {
				sliver[p*nr+j] = v
			}
		}
	}
}

// microKernelGo is the portable micro-kernel: for the packed slivers a
// (k×mr) and b (k×nr), c[i·ldc+j] = alpha·Σ_p a[p·mr+i]·b[p·nr+j] +
// beta·c[i·ldc+j], with c not read when beta is 0.
func microKernelGo(k int, a, b, c []float32, ldc int, alpha, beta float32) {
	var acc [mr][nr]float32
	a, b = a[:k*mr], b[:k*nr]
	for p := range k {
		bp := (*[nr]float32)(b[p*nr:])
		ap := (*[mr]float32)(a[p*mr:])
		for i, av := range ap {
			for j, bv := range bp {
				acc[i][j] += av * bv
			}
		}
	}
	for i := range mr {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			v := alpha * acc[i][j]
			if beta != 0 {
				v += beta * row[j]
			}
			row[j] = v
		}
	}
}
