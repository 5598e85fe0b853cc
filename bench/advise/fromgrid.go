package advise

import (
	"fmt"
	"math"

	"github.com/batchlab/batchlab/bench/grid"
)

// GridAdvice is the recommendation from a measured grid (batchlab grid):
// the critical batch measured at the most demanding loss target it could
// be fitted at, and the best LR measured at the batch chosen.
type GridAdvice struct {
	Grid      string  `json:"grid"`
	Optimizer string  `json:"optimizer"`
	Target    float64 `json:"target"` // the training loss B_crit was measured at
	BCrit     float64 `json:"b_crit"`
	BCritLo   float64 `json:"b_crit_lo"`
	BCritHi   float64 `json:"b_crit_hi"`
	Level     float64 `json:"level"`
	Batch     int     `json:"recommended_batch"`
	LR        float64 `json:"recommended_lr"`
	LREdge    bool    `json:"lr_at_grid_edge"`
	Steps     float64 `json:"steps"`   // measured at the batch and LR, mean over seeds
	Samples   float64 `json:"samples"` // likewise
	Reasoning string  `json:"reasoning"`
}

// FromGrid recommends from the grid in dir. At B = B_crit training takes
// twice the fewest steps (S_min) and twice the fewest samples (E_min), the
// balance McCandlish et al. recommend: half the batch costs 1.5× more steps
// for 25 % fewer samples, double it 1.5× the samples for 25 % fewer steps.
// So: the measured batch nearest B_crit (in ratio), at its best LR.
func FromGrid(dir string) (*GridAdvice, error) {
	a, err := grid.Load(dir)
	if err != nil {
		return nil, err
	}
	// The lowest loss (the targets may come in any order) whose fit
	// locates B_crit: the critical batch grows as the loss falls, and the
	// run the user plans ends low.
	var t *grid.TargetResult
	for i := range a.Targets {
		c := &a.Targets[i]
		if c.Fit != nil && !c.Fit.AtBound && (t == nil || c.Target < t.Target) {
			t = c
		}
	}
	if t == nil {
		return nil, fmt.Errorf("the grid in %s has no loss target at which 3 or more batch sizes were reached and B_crit located: run more of it, or advise without --grid", dir)
	}
	g := &GridAdvice{Grid: dir, Optimizer: a.Plan.OptimizerName(), Target: t.Target, BCrit: t.Fit.BCrit,
		BCritLo: float64(t.Fit.BCritLo), BCritHi: float64(t.Fit.BCritHi), Level: a.Level}
	var chosen *grid.Point
	for i := range t.Points {
		p := &t.Points[i]
		if p.Reached && (chosen == nil || math.Abs(math.Log(float64(p.Batch)/g.BCrit)) < math.Abs(math.Log(float64(chosen.Batch)/g.BCrit))) {
			chosen = p
		}
	}
	g.Batch, g.LR, g.LREdge, g.Steps, g.Samples = chosen.Batch, *chosen.BestLR, chosen.LREdge, chosen.Steps.Mean, chosen.Samples.Mean
	why := fmt.Sprintf("Measured, not estimated: in the grid in %s (%s), the steps to a training loss of %g at the best LR of each batch size follow "+
		"S(B) = S_min(1 + B_crit/B) with S_min = %.0f steps and B_crit = %.0f (%.0f %% interval %.0f–%.0f over seeds). "+
		"At B_crit a run takes twice the fewest steps and twice the fewest samples: smaller batches save samples and cost steps, larger ones the reverse. "+
		"The measured batch nearest it is B=%d; its best LR there was %.4g, reaching the target in %.0f steps (%.0f samples).",
		dir, g.Optimizer, g.Target, t.Fit.SMin, g.BCrit, 100*g.Level, g.BCritLo, g.BCritHi, g.Batch, g.LR, g.Steps, g.Samples)
	if g.LREdge {
		why += " That LR is at the edge of the grid's rates at this batch: a better one may lie beyond it; extend --lrs there."
	}
	if last := t.Points[len(t.Points)-1]; g.BCrit > 1.5*float64(last.Batch) {
		why += fmt.Sprintf(" B_crit lies beyond the largest batch measured (%d): larger batches should still cut the steps nearly in proportion.", last.Batch)
	}
	g.Reasoning = why
	return g, nil
}
