//go:build amd64 && !purego

package vec

import (
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
