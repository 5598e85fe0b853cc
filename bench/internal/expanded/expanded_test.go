package expanded

import (
	"math"
	"testing"
)

// TestTail: Φ(√(n/(n−1))·t) against Student's t from a table:
// t_{0.05, 2} = −2.919985580355516 and t_{0.05, 29} = −1.6991270265334977
// (90 %), t_{0.025, 2} = −4.302652729749464 (95 %); no interval below two
// seeds or one degree of freedom.
func TestTail(t *testing.T) {
	for _, c := range []struct {
		n         int
		nu, level float64
		want      float64
	}{{3, 2, 0.90, 0.00017428758710508196}, {30, 29, 0.90, 0.04197851349197923}, {3, 2, 0.95, 6.834137311941236e-08}} {
		if got := Tail(c.n, c.nu, c.level); math.Abs(got/c.want-1) > 1e-6 {
			t.Errorf("Tail(%d, %g, %g) = %g, want %g", c.n, c.nu, c.level, got, c.want)
		}
	}
	if !math.IsNaN(Tail(1, 0, 0.9)) || !math.IsNaN(Tail(3, 0.5, 0.9)) {
		t.Error("an interval below two seeds or one degree of freedom")
	}
}
