package device

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The convolution layers' data movement at batch 128 on MNIST-sized
// images, so that a CNN step's cost can be split between these passes and
// the GEMMs:
//
//	go test -tags cpu -run '^$' -bench 'Im2Col|MaxPool|SwapAxes' ./engine/device
//
// lenet5 is conv 6@5×5 pad 2, pool 2, conv 16@5×5, pool 2; cnn:32,64 is
// conv 32@3×3 pad 1, pool 2, conv 64@3×3 pad 1, pool 2 (engine/modelspec.go).
var benchConvs = []struct {
	name string
	conv ConvShape
	f    int // filters: the conv's output channels
}{
	{"lenet5/conv1", ConvShape{N: 128, C: 1, H: 28, W: 28, KH: 5, KW: 5, Stride: 1, Pad: 2}, 6},
	{"lenet5/conv2", ConvShape{N: 128, C: 6, H: 14, W: 14, KH: 5, KW: 5, Stride: 1, Pad: 0}, 16},
	{"cnn32,64/conv1", ConvShape{N: 128, C: 1, H: 28, W: 28, KH: 3, KW: 3, Stride: 1, Pad: 1}, 32},
	{"cnn32,64/conv2", ConvShape{N: 128, C: 32, H: 14, W: 14, KH: 3, KW: 3, Stride: 1, Pad: 1}, 64},
}

var benchPools = []struct {
	name string
	pool PoolShape
}{
	{"lenet5/pool1", PoolShape{N: 128, C: 6, H: 28, W: 28, K: 2, Stride: 2}},
	{"lenet5/pool2", PoolShape{N: 128, C: 16, H: 10, W: 10, K: 2, Stride: 2}},
	{"cnn32,64/pool1", PoolShape{N: 128, C: 32, H: 28, W: 28, K: 2, Stride: 2}},
	{"cnn32,64/pool2", PoolShape{N: 128, C: 64, H: 14, W: 14, K: 2, Stride: 2}},
}

// reportGBs reports the bytes a pass reads and writes per second.
func reportGBs(b *testing.B, elements int) {
	b.ReportMetric(float64(4*elements)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func BenchmarkIm2Col(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range benchConvs {
		s := c.conv
		nx, nc := s.N*s.C*s.H*s.W, s.ColRows()*s.ColCols()
		d := NewCPU()
		x, col := upload32(b, d, randSlice(r, nx)), upload32(b, d, randSlice(r, nc))
		b.Run(c.name+"/op=Im2Col", func(b *testing.B) {
			for b.Loop() {
				d.Im2Col(col, x, s)
			}
			reportGBs(b, nx+nc)
		})
		b.Run(c.name+"/op=Col2Im", func(b *testing.B) {
			for b.Loop() {
				d.Col2Im(x, col, s)
			}
			reportGBs(b, nx+nc)
		})
		// The last conv's CNHW maps → NCHW rows (the flatten before a Linear).
		n := c.f * s.ColCols()
		src, dst := upload32(b, d, randSlice(r, n)), upload32(b, d, make([]float32, n))
		b.Run(c.name+"/op=SwapAxes", func(b *testing.B) {
			for b.Loop() {
				d.SwapAxes(dst, src, 1, c.f, s.N, s.OutH()*s.OutW())
			}
			reportGBs(b, 2*n)
		})
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvGemm times a conv layer's products (engine/conv.go) on the
// CPU: the bias, W·col, the weight gradient dy·colᵀ, the bias gradient dy·1
// and dcol = Wᵀ·dy. The bias's and its gradient's shapes (depth 1, one
// column) and conv1's weight gradient (a small C, a long k) take the
// device's own paths (cpu_gemm.go):
//
//	go test -tags cpu,openblas -run '^$' -bench ConvGemm ./engine/device
func BenchmarkConvGemm(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range benchConvs {
		s, f := c.conv, c.f
		k, cols := s.ColRows(), s.ColCols()
		d := NewCPU()
		w, col, y := upload32(b, d, randSlice(r, f*k)), upload32(b, d, randSlice(r, k*cols)), upload32(b, d, randSlice(r, f*cols))
		bias, ones := upload32(b, d, randSlice(r, f)), upload32(b, d, randSlice(r, cols))
		for _, p := range []struct {
			name     string
			tA, tB   bool
			m, n, k  int
			a, bm, c Buffer
			beta     float32
		}{
			{"bias", false, false, f, cols, 1, bias, ones, y, 0},
			{"W·col", false, false, f, cols, k, w, col, y, 1},
			{"dW", false, true, f, k, cols, y, col, w, 0},
			{"db", false, false, f, 1, cols, y, ones, bias, 0},
			{"dcol", true, false, k, cols, f, w, y, col, 0},
		} {
			b.Run(c.name+"/op="+p.name, func(b *testing.B) {
				for b.Loop() {
					d.Gemm(p.tA, p.tB, p.m, p.n, p.k, 1, p.a, p.bm, p.beta, p.c)
				}
				b.ReportMetric(2*float64(p.m*p.n*p.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMaxPool(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, c := range benchPools {
		s := c.pool
		nx, ny := s.N*s.C*s.H*s.W, s.N*s.C*s.OutH()*s.OutW()
		d := NewCPU()
		x, dx, y, dy := upload32(b, d, randSlice(r, nx)), upload32(b, d, make([]float32, nx)), upload32(b, d, make([]float32, ny)), upload32(b, d, randSlice(r, ny))
		argmax, err := d.Alloc(Int32, ny)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/op=MaxPool", func(b *testing.B) {
			for b.Loop() {
				d.MaxPool(y, argmax, x, s)
			}
			reportGBs(b, nx+2*ny)
		})
		b.Run(c.name+"/op=MaxPoolBackward", func(b *testing.B) {
			for b.Loop() {
				d.MaxPoolBackward(dx, dy, argmax, s)
			}
			reportGBs(b, nx+2*ny)
		})
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCPUConvAllocs checks that the convolution passes allocate nothing
// per call, split across goroutines or not.
func TestCPUConvAllocs(t *testing.T) {
	d := NewCPU()
	for _, s := range []ConvShape{benchConvs[1].conv, {N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, Stride: 1}} {
		p := PoolShape{N: s.N, C: s.C, H: s.H, W: s.W, K: 2, Stride: 2}
		nx, nc, ny := s.N*s.C*s.H*s.W, s.ColRows()*s.ColCols(), p.N*p.C*p.OutH()*p.OutW()
		x, col, dx := mustAlloc32(t, d, nx), mustAlloc32(t, d, nc), mustAlloc32(t, d, nx)
		y, argmax := mustAlloc32(t, d, ny), must(d.Alloc(Int32, ny))
		allocs := testing.AllocsPerRun(5, func() {
			d.Im2Col(col, x, s)
			d.Col2Im(dx, col, s)
			d.SwapAxes(dx, x, 1, s.C, s.N, s.H*s.W)
			d.MaxPool(y, argmax, x, p)
			d.MaxPoolBackward(dx, y, argmax, p)
		})
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per round of the convolution passes, want 0", s, allocs)
		}
	}
}

func mustAlloc32(t *testing.T, d *CPU, n int) Buffer { return must(d.Alloc(Float32, n)) }

func must(b Buffer, err error) Buffer {
	if err != nil {
		panic(fmt.Sprintf("Alloc: %v", err))
	}
	return b
}
