package vec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// specials are values the loops must treat as the Go code does.
var specials = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, 0x1p-126, -0x1p-126, 0x1p-127, -0x1p-149,
	math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
}

// inputs returns n floats: specials first, then normal ones and values
// near the subnormal range, where momentum flushes.
func inputs(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch {
		case i < len(specials):
			x[i] = specials[i]
		case i%5 == 0:
			x[i] = float32(r.NormFloat64()) * 0x1p-120
		default:
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

func same(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool {
		return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y)
	})
}

func TestSemantics(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x, dy := inputs(r, 100), inputs(r, 100)
	y, dx := make([]float32, 100), make([]float32, 100)
	ReLU(y, x)
	ReLUBackward(dx, dy, x)
	for i, v := range x {
		want := max(v, 0)
		if !same([]float32{y[i]}, []float32{want}) {
			t.Errorf("ReLU(%g) = %g, want %g", v, y[i], want)
		}
		wantDx := float32(0)
		if v > 0 {
			wantDx = dy[i]
		}
		if !same([]float32{dx[i]}, []float32{wantDx}) {
			t.Errorf("ReLUBackward at y=%g: %g, want %g", v, dx[i], wantDx)
		}
	}
	// A velocity decaying through the subnormal range is flushed to zero.
	w, g, v := []float32{1, 1}, []float32{0, 0}, []float32{0x1p-126, -0x1p-126}
	MomentumSGD(w, g, v, 0.1, 0.5, 0)
	if v[0] != 0 || math.Float32bits(v[1]) != 0x80000000 || w[0] != 1 || w[1] != 1 {
		t.Errorf("subnormal velocity not flushed: v = %g, w = %g", v, w)
	}
}

func TestFTZ(t *testing.T) {
	for _, c := range []struct{ in, want float32 }{
		{0, 0}, {1, 1}, {-2, -2}, {math.MaxFloat32, math.MaxFloat32},
		{0x1p-126, 0x1p-126}, // the smallest normal stays
		{math.SmallestNonzeroFloat32, 0}, {0x1p-127, 0}, {-0x1p-127, float32(math.Copysign(0, -1))},
	} {
		if got := ftz(c.in); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("ftz(%g) = %g, want %g", c.in, got, c.want)
		}
	}
	if inf := float32(math.Inf(1)); ftz(inf) != inf || !math.IsNaN(float64(ftz(float32(math.NaN())))) {
		t.Error("ftz changed Inf or NaN")
	}
}

func TestPositiveMask(t *testing.T) {
	for _, v := range append(specials, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, -float32(math.NaN())) {
		want := uint32(0)
		if v > 0 {
			want = ^uint32(0)
		}
		if got := positiveMask(v); got != want {
			t.Errorf("positiveMask(%g) = %#x, want %#x", v, got, want)
		}
	}
}

func BenchmarkMomentumSGD(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	n := 1 << 18
	w, g, v := inputs(r, n), inputs(r, n), make([]float32, n)
	for b.Loop() {
		MomentumSGD(w, g, v, 0.01, 0.9, 0)
	}
	b.SetBytes(int64(20 * n))
}
