package spread

import "testing"

func TestOf(t *testing.T) {
	xs := []float64{5, 1, 3, 9}
	s := Of(xs)
	if s != (Spread{Median: 4, Min: 1, Max: 9, N: 4}) || xs[0] != 5 {
		t.Errorf("Of(5 1 3 9) = %+v (input now %v)", s, xs)
	}
	if s := Of([]float64{2, 7, 3}); s.Median != 3 || s.Relative() != 5.0/3 {
		t.Errorf("Of(2 7 3) = %+v, relative %g", s, s.Relative())
	}
	if (Of(nil) != Spread{}) {
		t.Error("Of(nil) is not zero")
	}
	a, b, c := Spread{2, 1, 3, 3}, Spread{4, 3, 5, 3}, Spread{5, 3.5, 6, 3}
	if !a.Overlaps(b) || !b.Overlaps(a) || a.Overlaps(c) || c.Overlaps(a) {
		t.Error("Overlaps is wrong")
	}
	if got := a.Scale(1e3).Format("%.0f"); got != "2000 [1000–3000]" {
		t.Errorf("Format: %q", got)
	}
}
