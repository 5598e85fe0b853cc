package lrfind

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plot draws the raw and the smoothed loss against LR (log axis) with the
// suggestion and the lowest smoothed loss marked, and saves it atomically
// in the format path's extension names (.svg, .png, .pdf).
func Plot(r *Result, path string) error {
	p := plotkit.New(fmt.Sprintf("LR range test: %s, batch %d, %s\n%s on %s", r.Model, r.Batch, r.Optimizer, r.Dataset, r.Device),
		"learning rate", "training loss")
	plotkit.LogAxis(&p.X)
	raw := plotkit.Line{Label: "loss of each batch", Color: plotkit.Reference(), Width: 0.7}
	smooth := plotkit.Line{Label: fmt.Sprintf("smoothed (median of %d, EMA β = %g)", medianOf, r.Sweep.Beta), Color: plotkit.SeriesColor(1), Width: 2}
	if len(r.Points) == 0 {
		return errors.New("lr-find: nothing to plot")
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, pt := range r.Points {
		raw.XY = append(raw.XY, plotter.XY{X: pt.LR, Y: pt.Loss})
		smooth.XY = append(smooth.XY, plotter.XY{X: pt.SmoothedLR, Y: pt.Smoothed})
		lo, hi = min(lo, pt.Smoothed), max(hi, pt.Smoothed)
	}
	for _, l := range []plotkit.Line{raw, smooth} {
		if err := l.Add(p); err != nil {
			return err
		}
	}
	// The smoothed curve up to 1.5 times its start sets the range (the
	// lines are clipped to it): a diverging batch, or the divergence
	// itself, would flatten the descent that the suggestion is read from.
	hi = min(hi, 1.5*r.Points[0].Smoothed)
	p.Y.Min, p.Y.Max = max(0, lo-0.1*(hi-lo)), hi+0.05*(hi-lo)
	if r.SuggestedLR > 0 {
		if err := plotkit.Vertical(p, r.SuggestedLR, fmt.Sprintf("suggested LR %.3g (steepest descent)", r.SuggestedLR), plotkit.SeriesColor(2)); err != nil {
			return err
		}
	}
	if r.MinLossLR > 0 {
		if err := plotkit.Vertical(p, r.MinLossLR, fmt.Sprintf("lowest smoothed loss, LR %.3g", r.MinLossLR), plotkit.SeriesColor(3)); err != nil {
			return err
		}
	}
	p.X.Min, p.X.Max = r.Points[0].LR, r.Points[len(r.Points)-1].LR
	return plotkit.Save(p, path)
}
