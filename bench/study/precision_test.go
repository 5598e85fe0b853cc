package study

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestQuantityFormat(t *testing.T) {
	for _, c := range []struct {
		q    quantity
		x    float64
		want string
	}{
		{accuracy, 0.97534, "97.53"},
		{accuracy, 1, "100.00"},
		{points, -0.00004, "0.00"}, // never "-0.00"
		{points, -0.0261, "-2.61"},
		{share, 0.30000000000000004, "30"},
		{lossQ, 0.061237, "0.0612"},
		{lossQ, 2.30258, "2.30"},
		{lossQ, 0.09996, "0.100"}, // the carry makes a digit: still 3 significant
		{secondsQ, 0.0080061, "0.00801"},
		{secondsQ, 1234.56, "1235"},
		{countQ, 939.5, "940"},
		{batchQ, 697.3, "697"},
		{batchQ, 43.67, "43.7"},
		{megabytes, 188.41, "188.4"},
		{learningRate, 0.28284271247461906, "0.283"},
		{learningRate, 0.05, "0.05"},
		{learningRate, 3.2, "3.2"},
		{general, 0, "0"},
		{lossQ, math.NaN(), "—"},
		{accuracy, math.Inf(1), "—"},
	} {
		if got := c.q.format(c.x); got != c.want {
			t.Errorf("quantity %d: format(%v) = %q, want %q", c.q, c.x, got, c.want)
		}
	}
	if got := accuracy.with(0.5); got != "50.00 %" {
		t.Errorf("accuracy.with(0.5) = %q", got)
	}
}

func TestQuantityOf(t *testing.T) {
	for key, want := range map[string]quantity{
		"test_acc_b64": accuracy, "gap_fixed": points, "closed_linear": share, "updates_ratio": share,
		"test_loss_b4096": lossQ, "sharpness_large": sharpnessQ, "seconds_b256": secondsQ,
		"b_crit": batchQ, "b_simple": batchQ, "steps_b64": countQ, "copies_b64": countQ, "other": general,
		"test_loss_diff": lossQ, "acc_decay_minus_constant": points, "sb_minus_lb": points, "sharpness_lb_minus_sb": sharpnessQ,
		"hessian_top_lb": general, "largest_kept_fixed": batchQ, "bytes_to_target_b64": countQ, "test_acc_sb_minus_lb": points,
	} {
		if got := quantityOf(key); got != want {
			t.Errorf("quantityOf(%q) = %d, want %d", key, got, want)
		}
	}
}

// decimal is a number as text: digits with a decimal point, or in
// exponent notation.
var (
	decimal = regexp.MustCompile(`\d*\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+`)
	arXiv   = regexp.MustCompile(`arXiv:\d+\.\d+`)
)

// overPrecise lists the numbers of text written with more digits than any
// quantity of precisions allows: more than 2 decimals with more than 3
// significant digits (0.30000000000000004, 0.008006, 1.234), or an
// exponent. arXiv identifiers are names, not numbers.
func overPrecise(text string) []string {
	var bad []string
	for _, num := range decimal.FindAllString(arXiv.ReplaceAllString(text, "arXiv"), -1) {
		if strings.ContainsAny(num, "eE") {
			bad = append(bad, num)
			continue
		}
		_, frac, _ := strings.Cut(num, ".")
		digits := strings.TrimLeft(strings.Replace(num, ".", "", 1), "0")
		if len(frac) > 2 && len(digits) > 3 {
			bad = append(bad, num)
		}
	}
	return bad
}

func TestOverPrecise(t *testing.T) {
	got := overPrecise("arXiv:1812.06162, tick 0.30000000000000004, 0.008006 s, 1.234, 97.53 %, 188.4 MB, 0.0612, 0.00801 s, 1e-05, go1.26.0, 2.46e+03")
	want := []string{"0.30000000000000004", "0.008006", "1.234", "1e-05", "2.46e+03"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("overPrecise = %q, want %q", got, want)
	}
	for _, p := range precisions { // the table's own examples pass
		if bad := overPrecise(p.q.with(p.example)); len(bad) > 0 {
			t.Errorf("%s: %q", p.name, bad)
		}
	}
}
