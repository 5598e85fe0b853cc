// Package spread summarizes repeated measurements as the bench commands
// report them: the median, and the range from the smallest to the largest
// (with the few repeats a benchmark affords, 3 to 10, an IQR would rest on
// one or two values at each end, and min–max is what benchstat users read).
package spread

import (
	"fmt"
	"slices"
)

// Spread is the median and the range of repeated measurements.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Of summarizes xs (left unchanged); the zero Spread when xs is empty.
func Of(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	m := s[n/2]
	if n%2 == 0 {
		m = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[n-1], N: n}
}

// Relative is the range as a fraction of the median.
func (s Spread) Relative() float64 { return (s.Max - s.Min) / s.Median }

// Overlaps says whether the ranges of s and t share a value: repeats
// that cannot tell the two apart.
func (s Spread) Overlaps(t Spread) bool { return s.Min <= t.Max && t.Min <= s.Max }

// Scale is s with every figure multiplied by k > 0 (a change of unit).
func (s Spread) Scale(k float64) Spread {
	s.Median, s.Min, s.Max = s.Median*k, s.Min*k, s.Max*k
	return s
}

// Format prints the median and the range with verb (e.g. "%.3g"):
// "1.23 [1.20–1.31]".
func (s Spread) Format(verb string) string {
	return fmt.Sprintf(verb+" ["+verb+"–"+verb+"]", s.Median, s.Min, s.Max)
}
