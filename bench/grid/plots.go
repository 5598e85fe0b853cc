package grid

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plots draws, for the grid's optimizer, S(B) with the fit per target, B_crit
// (and B_20 %, B_simple) against the target, and the best LR against B with
// the linear and sqrt rules, each as grid-<optimizer>-<name>.svg and .png in dir.
func (a *Analysis) Plots(dir string) error {
	for name, draw := range map[string]func() (*plot.Plot, error){
		"steps": a.StepsPlot, "bcrit": a.BCritPlot, "best-lr": a.bestLRPlot,
	} {
		p, err := draw()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if p == nil {
			continue // nothing measured yet
		}
		if _, err := plotkit.SaveSVGAndPNG(p, dir, "grid-"+a.optimizer()+"-"+name); err != nil {
			return err
		}
	}
	return nil
}

// errorBars draws asymmetric vertical bars from lo to hi at each x
// (plotkit.Line's bars are symmetric, which a log axis makes wrong).
func errorBars(p *plot.Plot, xy plotter.XYs, lo, hi []float64, c plotkit.Line) error {
	if len(xy) == 0 {
		return nil
	}
	errs := make(plotter.YErrors, len(xy))
	for i := range xy {
		errs[i].Low, errs[i].High = xy[i].Y-lo[i], hi[i]-xy[i].Y
	}
	bars, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{xy, errs})
	if err != nil {
		return err
	}
	bars.Color, bars.Width, bars.CapWidth = c.Color, vg.Points(1), vg.Points(5)
	p.Add(bars)
	return nil
}

func (a *Analysis) batches() []int {
	var bs []int
	for _, pt := range a.Targets[0].Points {
		bs = append(bs, pt.Batch)
	}
	return bs
}

// StepsPlot: S(B) at the best LR per target, seeds' range as bars, the fit dashed
// (nil with nothing measured yet; the study's report draws it too).
func (a *Analysis) StepsPlot() (*plot.Plot, error) {
	p := plotkit.New(fmt.Sprintf("Steps to each loss target at the best LR (%s)", a.optimizer()), "batch size B", "steps S(B)")
	bs := a.batches()
	plotkit.BatchAxis(&p.X, bs)
	plotkit.LogAxis(&p.Y)
	drawn := false
	for ti, t := range a.Targets {
		var xy plotter.XYs
		var lo, hi []float64
		for _, pt := range t.Points {
			if pt.Reached && plotkit.Keep(float64(pt.Batch), pt.Steps.Mean, true, true) && pt.Steps.Min > 0 {
				xy = append(xy, plotter.XY{X: float64(pt.Batch), Y: pt.Steps.Mean})
				lo, hi = append(lo, pt.Steps.Min), append(hi, pt.Steps.Max)
			}
		}
		if len(xy) == 0 {
			continue
		}
		drawn = true
		line := plotkit.Line{Label: fmt.Sprintf("loss %g", t.Target), Color: plotkit.SeriesColor(ti + 1), XY: xy, Marks: true, Width: 0.01}
		if err := line.Add(p); err != nil {
			return nil, err
		}
		if err := errorBars(p, xy, lo, hi, line); err != nil {
			return nil, err
		}
		if t.Fit != nil {
			var curve plotter.XYs
			for b := float64(bs[0]); b <= float64(bs[len(bs)-1])*1.0001; b *= math.Pow(2, 0.125) {
				curve = append(curve, plotter.XY{X: b, Y: t.Fit.SMin * (1 + t.Fit.BCrit/b)})
			}
			label := fmt.Sprintf("fit: B_crit %.0f", t.Fit.BCrit)
			if err := (plotkit.Line{Label: label, Color: line.Color, XY: curve, Dashed: true, Width: 1.2}).Add(p); err != nil {
				return nil, err
			}
		}
	}
	if !drawn {
		return nil, nil
	}
	return p, nil
}

// BCritPlot: B_crit with its interval against the loss target, beside
// Zhang et al.'s B_20 % and the noise scale B_simple at the same loss.
func (a *Analysis) BCritPlot() (*plot.Plot, error) {
	p := plotkit.New(fmt.Sprintf("Critical batch against the loss target (%s)", a.optimizer()), "training-loss target (lower: later in training)", "batch size")
	plotkit.LogAxis(&p.X)
	p.X.Scale = plot.InvertedScale{Normalizer: plot.LogScale{}} // training goes on to the right
	plotkit.LogAxis(&p.Y)
	type series struct {
		label       string
		xy          plotter.XYs
		lo, hi      []float64
		dashed      bool
		colorOffset int
	}
	crit, zhang, noise := series{label: "B_crit (McCandlish fit)"}, series{label: "B_20% (Zhang et al.)", dashed: true, colorOffset: 1},
		series{label: "B_simple (noise scale)", colorOffset: 2}
	// The three sit at the same targets: nudge them apart along x.
	for _, t := range a.Targets {
		if r := t.Fit; r != nil && !r.AtBound && plotkit.Keep(t.Target, r.BCrit, true, true) && r.BCritLo > 0 && plotkit.Finite(float64(r.BCritHi)) {
			crit.xy, crit.lo, crit.hi = append(crit.xy, plotter.XY{X: t.Target, Y: r.BCrit}), append(crit.lo, float64(r.BCritLo)), append(crit.hi, float64(r.BCritHi))
		}
		if r := t.Fit; r != nil && !r.B20Above && r.B20 > 0 && plotkit.Finite(float64(r.B20Hi)) && r.B20Lo > 0 {
			zhang.xy, zhang.lo, zhang.hi = append(zhang.xy, plotter.XY{X: t.Target * 1.03, Y: r.B20}), append(zhang.lo, float64(r.B20Lo)), append(zhang.hi, float64(r.B20Hi))
		}
		if n := t.Noise; n != nil && plotkit.Keep(t.Target, float64(n.BSimple), true, true) && n.Lo > 0 && plotkit.Finite(float64(n.Hi)) {
			noise.xy, noise.lo, noise.hi = append(noise.xy, plotter.XY{X: t.Target / 1.03, Y: float64(n.BSimple)}), append(noise.lo, float64(n.Lo)), append(noise.hi, float64(n.Hi))
		}
	}
	if len(crit.xy)+len(zhang.xy)+len(noise.xy) == 0 {
		return nil, nil
	}
	for _, s := range []series{crit, zhang, noise} {
		line := plotkit.Line{Label: s.label, Color: plotkit.SeriesColor(s.colorOffset + 1), XY: s.xy, Marks: true, Dashed: s.dashed}
		if err := line.Add(p); err != nil {
			return nil, err
		}
		if err := errorBars(p, s.xy, s.lo, s.hi, line); err != nil {
			return nil, err
		}
	}
	plotkit.WidenLog(&p.X)
	return p, nil
}

// bestLRPlot: the best LR per batch size and target, with the linear and
// sqrt rules drawn from the smallest batch's best LR at the lowest target
// that batch reached.
func (a *Analysis) bestLRPlot() (*plot.Plot, error) {
	p := plotkit.New(fmt.Sprintf("Best learning rate by batch size (%s)", a.optimizer()), "batch size B", "best LR")
	bs := a.batches()
	plotkit.BatchAxis(&p.X, bs)
	plotkit.LogAxis(&p.Y)
	var anchor *plotter.XY
	for ti, t := range a.Targets {
		var xy plotter.XYs
		for _, pt := range t.Points {
			if pt.Reached {
				xy = append(xy, plotter.XY{X: float64(pt.Batch), Y: *pt.BestLR})
			}
		}
		if len(xy) == 0 {
			continue
		}
		if anchor == nil || xy[0].X <= anchor.X {
			first := xy[0]
			anchor = &first
		}
		if err := (plotkit.Line{Label: fmt.Sprintf("loss %g", t.Target), Color: plotkit.SeriesColor(ti + 1), XY: xy, Marks: true}).Add(p); err != nil {
			return nil, err
		}
	}
	if anchor == nil {
		return nil, nil
	}
	for i, rule := range []struct {
		label string
		power float64
	}{{"linear rule", 1}, {"sqrt rule", 0.5}} {
		var xy plotter.XYs
		for _, b := range bs {
			if float64(b) >= anchor.X {
				xy = append(xy, plotter.XY{X: float64(b), Y: anchor.Y * math.Pow(float64(b)/anchor.X, rule.power)})
			}
		}
		if err := (plotkit.Line{Label: rule.label, Color: plotkit.Reference(), XY: xy, Dashed: i == 0, Width: 1}).Add(p); err != nil {
			return nil, err
		}
	}
	// Every LR tried, faintly, so the grid's edges show.
	var tried plotter.XYs
	for _, b := range bs {
		for _, lr := range a.Plan.LRsAt(b) {
			tried = append(tried, plotter.XY{X: float64(b), Y: lr})
		}
	}
	sc, err := plotter.NewScatter(tried)
	if err != nil {
		return nil, err
	}
	sc.Color, sc.Radius = plotkit.Reference(), vg.Points(1.2)
	p.Add(sc)
	p.Legend.Add("LRs tried", sc)
	return p, nil
}
