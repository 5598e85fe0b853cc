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

// TestBootstrapExpanded: the study's bootstrap reads expanded percentiles,
// which for a mean approach Student's t interval: of 1 … 5, 3 ± 2.776·
// 1.581/√5 = [1.04, 4.96] (its 0.1 % quantiles, among 2000 resampled means
// on steps of 0.2: 1.4 and 4.8 are read), where the plain percentiles give
// about 3 ± 1.96·1.414/√5 = [1.76, 4.24]; at 30 seeds the two nearly agree. (At
// 3 seeds and 95 % both are the lowest and highest resample: a resample of
// one seed thrice is 1/27 of them.)
func TestBootstrapExpanded(t *testing.T) {
	mean := func(xs []float64) func([]int) (float64, bool) {
		return func(units []int) (float64, bool) {
			s := 0.0
			for _, u := range units {
				s += xs[u]
			}
			return s / float64(len(units)), true
		}
	}
	if iv := bootstrap(5, mean([]float64{1, 2, 3, 4, 5})); iv.Lo < 1 || iv.Lo > 1.5 || iv.Hi < 4.5 || iv.Hi > 5 || iv.Mean != 3 {
		t.Errorf("5 seeds: %+v, want 3 [1 … 1.5, 4.5 … 5]", iv)
	}
	xs := make([]float64, 30)
	for i := range xs {
		xs[i] = float64(i)
	}
	// The t-interval of 0 … 29: 14.5 ± 2.045·8.80/√30 = [11.2, 17.8].
	if iv := bootstrap(30, mean(xs)); math.Abs(iv.Lo-11.2) > 0.6 || math.Abs(iv.Hi-17.8) > 0.6 {
		t.Errorf("30 seeds: %+v, want about [11.2, 17.8]", iv)
	}
}
