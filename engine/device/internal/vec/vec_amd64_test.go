//go:build amd64 && !purego

package vec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine/device/internal/cpuflags"
)

// TestAssemblyAgreesWithGo checks each function, which runs the assembly on
// all but the last len%8 elements, against its Go loop run on all of them:
// the bits must agree. It fails where the CPU has AVX2 and the assembly is
// off, and skips only where the CPU lacks AVX2.
func TestAssemblyAgreesWithGo(t *testing.T) {
	cpuflags.RequireAssembly(t, haveAVX2, "avx2")
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 9, 31, 1000} {
		w, g, v, x := inputs(r, n), inputs(r, n), inputs(r, n), inputs(r, n)
		src := make([]uint8, n)
		for i := range src {
			src[i] = uint8(i * 7)
		}
		momentum := func(f func(w, g, v []float32, lr, momentum, weightDecay float32), lr, wd float32) func() []float32 {
			return func() []float32 {
				w2, v2 := slices.Clone(w), slices.Clone(v)
				f(w2, g, v2, lr, 0.9, wd)
				return append(w2, v2...)
			}
		}
		for _, c := range []struct {
			name      string
			asm, goes func() []float32
		}{
			{"MomentumSGD", momentum(MomentumSGD, 0.1, 0.01), momentum(momentumGo, 0.1, 0.01)},
			{"MomentumSGD tiny lr", momentum(MomentumSGD, 1e-30, 0), momentum(momentumGo, 1e-30, 0)}, // lr·v subnormal
			{"ReLU",
				func() []float32 { y := make([]float32, n); ReLU(y, x); return y },
				func() []float32 { y := make([]float32, n); reluGo(y, x); return y }},
			{"ReLUBackward",
				func() []float32 { dx := make([]float32, n); ReLUBackward(dx, g, x); return dx },
				func() []float32 { dx := make([]float32, n); reluBackwardGo(dx, g, x); return dx }},
			{"Add",
				func() []float32 { d := slices.Clone(w); Add(d, x); return d },
				func() []float32 { d := slices.Clone(w); addGo(d, x); return d }},
			{"CopyRows", // rows of n/4 floats, every n/3rd one
				func() []float32 { d := slices.Clone(w); CopyRows(d, n/3, x, 2, 3, n/4); return d },
				func() []float32 {
					d := slices.Clone(w)
					for r := range 3 * min(1, n/4) { // no rows where they would be empty
						copy(d[n/3*r:][:n/4], x[2*r:][:n/4])
					}
					return d
				}},
			{"AddRows", // rows of n/3 floats, every third one
				func() []float32 { d := slices.Clone(w); AddRows(d, 3, x, 2, n/9, n/3); return d },
				func() []float32 {
					d := slices.Clone(w)
					for r := range n / 9 {
						addGo(d[3*r:][:n/3], x[2*r:][:n/3])
					}
					return d
				}},
			{"Normalize",
				func() []float32 { d := make([]float32, n); Normalize(d, src, 1.0/255, -0.5); return d },
				func() []float32 { d := make([]float32, n); normalizeGo(d, src, 1.0/255, -0.5); return d }},
		} {
			if got, want := c.asm(), c.goes(); !same(got, want) {
				t.Errorf("%s n=%d: the assembly and the Go loop disagree", c.name, n)
			}
		}
	}
}

// TestMaxPool2x2 checks the assembly's windows against their definition on
// random rows with ties (values from a few), −0 and +0, and NaNs, where it
// must stop before the block of windows holding the first: row lengths
// below 4, of 4 to 7 (two blocks of four), multiples of 8, and others,
// whose last eight it does again.
func TestMaxPool2x2(t *testing.T) {
	cpuflags.RequireAssembly(t, haveAVX2, "avx2")
	r := rand.New(rand.NewPCG(3, 4))
	negZero := float32(math.Copysign(0, -1))
	values := []float32{-1, negZero, 0, 0.5, 2, 2}
	for _, n := range []int{1, 3, 4, 5, 7, 8, 9, 14, 16, 30} {
		for _, nanAt := range []int{-1, 0, 5, 9, 13, 17, 27, 40, 57} {
			if nanAt >= 4*n {
				continue
			}
			r0, r1 := make([]float32, 2*n+1), make([]float32, 2*n+1)
			for i := range r0 {
				r0[i], r1[i] = values[r.IntN(len(values))], values[r.IntN(len(values))]
			}
			first := n // the first window with a NaN
			if nanAt >= 0 {
				row, col := r0, nanAt/2
				if nanAt%2 == 1 {
					row = r1
				}
				row[col] = float32(math.NaN())
				first = col / 2
			}
			y, arg := make([]float32, n), make([]int32, n)
			const at, wd = 100, 61
			done := MaxPool2x2(y, arg, r0, r1, at, wd)
			var want int // blocks of 8 from 8 windows on, of 4 from 4 on
			switch {
			case n < 4:
			case first == n: // no NaN
				want = n
			case n < 8:
				want = first &^ 3
			default:
				want = first &^ 7
			}
			if done != want {
				t.Fatalf("n=%d NaN at %d: did %d windows, want %d", n, nanAt, done, want)
			}
			for x := range done {
				best, off := r0[2*x], int32(0)
				for k, v := range []float32{r0[2*x+1], r1[2*x], r1[2*x+1]} {
					if v > best {
						best, off = v, []int32{1, wd, wd + 1}[k]
					}
				}
				if math.Float32bits(y[x]) != math.Float32bits(best) || arg[x] != at+int32(2*x)+off {
					t.Errorf("n=%d window %d: %v at %d, want %v at %d", n, x, y[x], arg[x], best, at+int32(2*x)+off)
				}
			}
		}
	}
}
