// Package expanded holds Hesterberg's expanded percentile interval, the
// bootstrap interval that the grid and the study use for statistics of a
// few seeds.
package expanded

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Tail is the share of the draws left out at each end of the level
// interval of a bootstrap over n seeds whose spread rests on nu degrees of
// freedom: Hesterberg's expanded percentile interval (T. Hesterberg, "What
// Teachers Should Know About the Bootstrap", The American Statistician
// 69(4), 2015; R package resample, CI.percentile(expand = TRUE)):
// α'/2 = Φ(√(n/(n−1))·t), t the α/2 quantile of Student's t with nu degrees
// of freedom (negative). The plain percentile interval undercovers at a few
// seeds: a resample's spread is √((n−1)/n) of the sample's, and that spread
// is itself estimated, which the normal quantile ignores. For a mean of n
// values nu = n − 1, and the expanded interval of normal data is Student's
// t interval (at 3 seeds and 90 %: the 0.017 % and 99.983 % quantiles
// instead of 5 % and 95 %). NaN below two seeds or one degree of freedom:
// the spread is not estimated.
func Tail(n int, nu, level float64) float64 {
	if n < 2 || !(nu >= 1) {
		return math.NaN()
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nu}.Quantile((1 - level) / 2)
	return distuv.UnitNormal.CDF(math.Sqrt(float64(n)/float64(n-1)) * t)
}
