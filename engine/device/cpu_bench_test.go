package device

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BenchmarkGemm times the CPU device's Gemm (both cores) on the products of
// a training step of the MLP 784-512-512-10, beside gonum's Sgemm, the
// pure-Go GEMM the device used before (and Gorgonia uses):
//
//	go test -tags cpu -run '^$' -bench Gemm ./engine/device           # Go SGEMM
//	go test -tags cpu,openblas -run '^$' -bench Gemm ./engine/device  # OpenBLAS
func BenchmarkGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, batch := range []int{32, 128, 512, 2048} {
		for _, s := range []struct {
			name    string
			tA, tB  bool
			m, n, k int
		}{
			{"x·W1", false, false, batch, 512, 784},  // forward, first layer
			{"xᵀ·dy", true, false, 784, 512, batch},  // its weight gradient
			{"dy·W2ᵀ", false, true, batch, 512, 512}, // input gradient, second layer
		} {
			a, bm, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
			flops := 2 * float64(s.m*s.n*s.k)
			b.Run(fmt.Sprintf("batch=%d/op=%s/impl=%s", batch, s.name, CPUGemm), func(b *testing.B) {
				d := NewCPU()
				ab, bb, cb := upload32(b, d, a), upload32(b, d, bm), upload32(b, d, c)
				for b.Loop() {
					d.Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, ab, bb, 0, cb)
				}
				if err := d.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("batch=%d/op=%s/impl=gonum", batch, s.name), func(b *testing.B) {
				tA, lda, tB, ldb := blas.NoTrans, s.k, blas.NoTrans, s.n
				if s.tA {
					tA, lda = blas.Trans, s.m
				}
				if s.tB {
					tB, ldb = blas.Trans, s.k
				}
				var impl gonum.Implementation
				for b.Loop() {
					impl.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func upload32(b *testing.B, d *CPU, x []float32) Buffer {
	buf, err := d.Alloc(Float32, len(x))
	if err != nil {
		b.Fatal(err)
	}
	if err := Upload(d, buf, x); err != nil {
		b.Fatal(err)
	}
	return buf
}
