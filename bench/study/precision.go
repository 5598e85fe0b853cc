package study

import (
	"math"
	"strconv"
	"strings"
)

// One precision per quantity: every number the report prints (tables, the
// numbers behind a verdict, captions, the findings' text) goes through the
// quantity it is, so an accuracy always has two decimals and a loss three
// significant digits, wherever it appears. The page shows this table.

// quantity is a kind of number the study reports.
type quantity int

const (
	general      quantity = iota // a number of no kind below: 3 significant digits
	accuracy                     // a fraction, shown in % with 2 decimals
	points                       // a difference of accuracies, in percentage points, 2 decimals
	share                        // a fraction of something (gap closed, updates ratio), in %, whole
	lossQ                        // cross-entropy, 3 significant digits
	sharpnessQ                   // Keskar's φ in %, 3 significant digits
	secondsQ                     // wall time, 3 significant digits
	countQ                       // updates, copies, epochs, samples/s: whole numbers
	batchQ                       // an estimated batch size (B_simple, B_crit): 3 significant, whole above 100
	megabytes                    // data moved, 1 decimal
	learningRate                 // 3 significant digits
)

// precisions is the table the page prints: what each quantity is and how
// it is written.
var precisions = []struct {
	q          quantity
	name, rule string
	example    float64
}{
	{accuracy, "accuracy", "percent, 2 decimals", 0.97534},
	{points, "accuracy difference (gap)", "percentage points, 2 decimals", 0.00261},
	{share, "share (gap closed, updates ratio)", "percent, whole", 0.7719},
	{lossQ, "loss", "3 significant digits", 0.061237},
	{sharpnessQ, "sharpness φ", "percent, 3 significant digits", 2.4637},
	{secondsQ, "time", "seconds, 3 significant digits", 0.0080061},
	{countQ, "updates, copies, epochs, samples/s", "whole numbers", 939.4},
	{batchQ, "B_simple, B_crit", "3 significant digits, whole from 100", 697.3},
	{megabytes, "data moved", "MB, 1 decimal", 188.41},
	{learningRate, "learning rate", "3 significant digits, no trailing zeros", 0.0707107},
	{general, "anything else", "3 significant digits", 1.23456},
}

// format writes x as quantity q, without its unit; NaN and ±Inf are "—".
func (q quantity) format(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	switch q {
	case accuracy, points:
		return fixed(100*x, 2)
	case share:
		return fixed(100*x, 0)
	case countQ:
		return fixed(x, 0)
	case megabytes:
		return fixed(x, 1)
	case batchQ:
		if math.Abs(x) >= 100 {
			return fixed(x, 0)
		}
	case learningRate: // a setting: 0.05, not 0.0500
		s := significant(x, 3)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	return significant(x, 3)
}

// unit is what follows a formatted number in prose ("97.53 %", "0.3 s").
func (q quantity) unit() string {
	switch q {
	case accuracy, share, sharpnessQ:
		return " %"
	case points:
		return " points"
	case secondsQ:
		return " s"
	case megabytes:
		return " MB"
	}
	return ""
}

// with is format and unit: the form for prose.
func (q quantity) with(x float64) string {
	s := q.format(x)
	if s == "—" {
		return s
	}
	return s + q.unit()
}

// fixed writes x with d decimals and never "-0.00".
func fixed(x float64, d int) string {
	s := strconv.FormatFloat(x, 'f', d, 64)
	if strings.Trim(s, "-0.") == "" {
		return strings.TrimPrefix(s, "-")
	}
	return s
}

// significant writes x with n significant digits in positional notation
// (never an exponent): 0.0612, 2.46, 697, 1124 — whole numbers keep every
// digit rather than become 1.12e+03.
func significant(x float64, n int) string {
	if x == 0 {
		return "0"
	}
	d := n - 1 - int(math.Floor(math.Log10(math.Abs(x))))
	if d <= 0 {
		return fixed(x, 0)
	}
	// Rounding can carry into a new digit (0.0999 → 0.100): one decimal less.
	if r := math.Abs(x) * math.Pow(10, float64(d)); math.Round(r) >= math.Pow(10, float64(n)) {
		d--
	}
	return fixed(x, max(d, 0))
}

// quantityOf names the quantity of a finding's number from its key, by the
// words the rules use in their keys (findings.go). What is measured comes
// first (a loss, a sharpness, a time: "test_loss_diff" is a loss), then
// differences of accuracies ("gap", "diff", "minus": points), then the rest.
func quantityOf(key string) quantity {
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(key, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("closed", "ratio", "share", "fraction"):
		return share
	case has("loss"):
		return lossQ
	case has("sharp"):
		return sharpnessQ
	case has("hessian"):
		return general
	case has("seconds", "time"):
		return secondsQ
	case has("b_simple", "b_crit", "bcrit", "bsimple", "largest", "kept"):
		return batchQ
	case has("gap", "diff", "minus"):
		return points
	case has("acc"):
		return accuracy
	case has("mb"):
		return megabytes
	case has("lr"):
		return learningRate
	case has("updates", "steps", "copies", "bytes", "epochs", "seeds", "runs", "count"):
		return countQ
	}
	return general
}
