package study

import (
	"math"
	"testing"
)

// TestGeometricInterval: for 2, 8, 32 the logs are ln 2·(1, 3, 5), mean
// 3 ln 2, standard deviation 2 ln 2, so the interval is 8·2^(±2t/√3) with
// t = 4.302652729749464, Student's t's 97.5 % quantile at 2 degrees of
// freedom from a table: [0.2555, 250.5] around 8, where the t-interval of
// the values themselves, 14 ± t·√252/√3, reaches −25.4.
func TestGeometricInterval(t *testing.T) {
	xs := []float64{2, 8, 32}
	iv, ok := geometricInterval(xs)
	if !ok {
		t.Fatal("positive values refused")
	}
	const tq = 4.302652729749464
	spread := math.Pow(2, 2*tq/math.Sqrt(3))
	near := func(got, want float64) bool { return math.Abs(got/want-1) < 1e-9 }
	if !near(iv.Mean, 8) || !near(iv.Lo, 8/spread) || !near(iv.Hi, 8*spread) || iv.N != 3 || iv.Level != confidence || iv.Method != "t of logs" {
		t.Errorf("geometric interval of %v: %+v, want 8 [%g, %g]", xs, iv, 8/spread, 8*spread)
	}
	if !(iv.Lo > 0 && iv.Lo < iv.Mean && iv.Mean < iv.Hi) {
		t.Errorf("bounds [%g, %g] not positive around the geometric mean %g", iv.Lo, iv.Hi, iv.Mean)
	}
	if ti := tInterval(xs); !(ti.Lo < 0) || !near(ti.Mean, 14) {
		t.Errorf("t-interval of %v: %+v, want mean 14 and a negative lower bound", xs, ti)
	}
	for _, bad := range [][]float64{{2, 0, 8}, {2, -1, 8}, {2, math.Inf(1)}, {math.NaN(), 2}} {
		if _, ok := geometricInterval(bad); ok {
			t.Errorf("%v: a geometric interval of a value that is not positive and finite", bad)
		}
	}
	// One seed: the geometric mean, no interval.
	if iv, ok := geometricInterval([]float64{5}); !ok || !near(iv.Mean, 5) || !math.IsNaN(iv.Lo) {
		t.Errorf("one value: %+v", iv)
	}
}
