package device

import (
	"fmt"
	"testing"
)

func BenchmarkZZConvGemm(b *testing.B) {
	type sh struct {
		name       string
		tA, tB     bool
		m, n, k    int
		beta       float32
	}
	B := 128
	M1, M2 := B*784, B*100
	shapes := []sh{
		{"c1bias", false, false, 6, M1, 1, 0},
		{"c1fwd", false, false, 6, M1, 25, 1},
		{"c1dW", false, true, 6, 25, M1, 0},
		{"c1db", false, false, 6, 1, M1, 0},
		{"c2bias", false, false, 16, M2, 1, 0},
		{"c2fwd", false, false, 16, M2, 150, 1},
		{"c2dW", false, true, 16, 150, M2, 0},
		{"c2db", false, false, 16, 1, M2, 0},
		{"c2dcol", true, false, 150, M2, 16, 0},
	}
	d := NewCPU()
	for _, s := range shapes {
		a := upload32(b, d, make([]float32, s.m*s.k))
		bb := upload32(b, d, make([]float32, s.k*s.n))
		c := upload32(b, d, make([]float32, s.m*s.n))
		b.Run(fmt.Sprint(s.name), func(b *testing.B) {
			for b.Loop() {
				d.Gemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, bb, s.beta, c)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
