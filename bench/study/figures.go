package study

import (
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine"
)

// The plots of the report, drawn with the bench suite's plotkit. Each is
// drawn from the Results alone and returns a nil plot when the study has
// nothing to show for it. Every point passes plotkit.Keep before it reaches
// a plotter; diverged runs are drawn as such (dashed lines, × marks) rather
// than averaged in or dropped.

// figures draws the plots of one Results.
type figures struct {
	r        *Results
	batches  []int    // every starting batch size of the study, ascending
	variants []string // every variant, in order of first appearance
}

func newFigures(r *Results) *figures {
	bs := append(slices.Clone(r.Preset.Batches), batchesOf(r.Runs)...)
	slices.Sort(bs)
	return &figures{r: r, batches: slices.Compact(bs), variants: variantsOf(r.Runs)}
}

// Batch sizes take the batch colours in ascending order, variants the
// series colours in order of appearance, so a colour means the same thing
// in every plot.

func (f *figures) batchColor(b int) color.Color {
	return plotkit.BatchColor(slices.Index(f.batches, b))
}

func (f *figures) variantColor(v string) color.Color {
	return plotkit.SeriesColor(slices.Index(f.variants, v))
}

// failure is why a run is left out of every mean and marked on the plots
// instead: "diverged" (the loss became NaN or Inf), "failed" (an error, or
// no epoch recorded); "" for a healthy run.
func failure(run Run) string {
	switch {
	case run.Diverged:
		return "diverged"
	case run.Error != "" || len(run.Epochs) == 0:
		return "failed"
	}
	return ""
}

func healthy(run Run) bool { return failure(run) == "" }

// Data selection. The means and spreads over seeds come from measure
// (findings.go), so a plot and a verdict never disagree about which runs
// count: the healthy ones, finished without an error and not diverged.

// meanOf is the mean of the finite values of xs; ok is false when there is none.
func meanOf(xs []float64) (mean float64, ok bool) {
	n := 0
	for _, x := range xs {
		if plotkit.Finite(x) {
			mean += x
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return mean / float64(n), true
}

func withBatch(runs []Run, b int) []Run {
	return slices.DeleteFunc(slices.Clone(runs), func(run Run) bool { return run.Batch != b })
}

func variantsOf(runs []Run) []string {
	var vs []string
	for _, run := range runs {
		if !slices.Contains(vs, run.Variant) {
			vs = append(vs, run.Variant)
		}
	}
	return vs
}

func withVariant(runs []Run, v string) []Run {
	return slices.DeleteFunc(slices.Clone(runs), func(run Run) bool { return run.Variant != v })
}

// unhealthy lists the runs that are not healthy.
func unhealthy(runs []Run) []Run {
	return slices.DeleteFunc(slices.Clone(runs), healthy)
}

func withSeed(runs []Run, seed uint64) []Run {
	return slices.DeleteFunc(slices.Clone(runs), func(run Run) bool { return run.Seed != seed })
}

func seedsOf(runs []Run) []uint64 {
	var ss []uint64
	for _, run := range runs {
		ss = append(ss, run.Seed)
	}
	slices.Sort(ss)
	return slices.Compact(ss)
}

func trainAcc(r Run) (float64, bool) {
	if r.FinalTrainAccuracy == nil {
		return 0, false
	}
	return *r.FinalTrainAccuracy, true
}

// percent turns a fraction metric into percentage points.
func percent(metric func(Run) (float64, bool)) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) {
		v, ok := metric(r)
		return 100 * v, ok
	}
}

// finalBSimple is the last finite, positive B_simple of each noise run,
// averaged over the runs; ok is false when there is none.
func finalBSimple(r *Results) (b float64, ok bool) {
	var xs []float64
	for _, run := range filter(r.Runs, Noise) {
		for i := len(run.Noise) - 1; i >= 0; i-- {
			if v := run.Noise[i].BSimple; plotkit.Finite(v) && v > 0 {
				xs = append(xs, v)
				break
			}
		}
	}
	return meanOf(xs)
}

// The plots.

// trainLoss is the training loss of each step against epochs, in bins of
// up to binSteps steps, per batch size: the mean over the healthy seeds in
// their min–max band. Runs that diverged or failed are drawn dashed up to
// their last finite loss, with a × there, and kept inside the healthy
// curves' range: they cannot stretch the axis.
func (f *figures) trainLoss() (p *plot.Plot, binSteps int, err error) {
	runs := filter(f.r.Runs, FixedLR)
	p = plotkit.New("Training loss, fixed learning rate", "epoch", "training loss (smoothed)")
	plotkit.LogAxis(&p.Y)
	plotkit.EpochAxis(&p.X)
	p.X.Min = 0
	var ceiling float64 // of the healthy curves
	var bad []plotkit.Line
	for _, b := range batchesOf(runs) {
		var curves []plotter.XYs
		for _, run := range withBatch(runs, b) {
			x, y := stepCurve(run)
			if healthy(run) {
				xy, bin := binned(x, y)
				binSteps = max(binSteps, bin)
				curves = append(curves, xy)
				continue
			}
			n := slices.IndexFunc(y, func(v float64) bool { return !plotkit.Finite(v) })
			if n < 0 {
				n = len(y)
			}
			if xy, _ := binned(x[:n], y[:n]); len(xy) > 0 { // else it failed in its first bin: the notes say so
				bad = append(bad, plotkit.Line{Color: f.batchColor(b), XY: xy, Dashed: true})
			}
		}
		bd := curveBand(curves)
		for _, hi := range bd.hi {
			ceiling = max(ceiling, hi)
		}
		if err := bd.add(p, plotkit.Line{Label: fmt.Sprintf("B=%d", b), Color: f.batchColor(b)}); err != nil {
			return nil, 0, err
		}
	}
	if ceiling == 0 && len(bad) == 0 {
		return nil, 0, nil
	}
	var ends plotter.XYs
	for _, l := range bad {
		if ceiling > 0 {
			for i := range l.XY {
				l.XY[i].Y = min(l.XY[i].Y, 1.5*ceiling) // the blow-up leaves through the top
			}
		}
		if err := l.Add(p); err != nil {
			return nil, 0, err
		}
		ends = append(ends, l.XY[len(l.XY)-1])
	}
	if err := addMarks(p, ends, "diverged or failed: not in band"); err != nil {
		return nil, 0, err
	}
	plotkit.WidenLog(&p.Y)
	return p, max(binSteps, 1), nil
}

// stepCurve is a run's loss of every step against epochs, step i of an
// epoch of n steps at epoch−1 + (i+1)/n.
func stepCurve(run Run) (x, y []float64) {
	for _, e := range run.Epochs {
		n := float64(len(e.StepLosses))
		for i, l := range e.StepLosses {
			x = append(x, float64(e.Epoch-1)+float64(i+1)/n)
			y = append(y, float64(l))
		}
	}
	return x, y
}

// curveBand is the band of curves point by point (the curves of one batch
// size have the same steps, so the same bins), over those long enough.
func curveBand(curves []plotter.XYs) band {
	var bd band
	for i := 0; ; i++ {
		var x, ys []float64
		for _, c := range curves {
			if i < len(c) {
				x, ys = append(x, c[i].X), append(ys, c[i].Y)
			}
		}
		if len(ys) == 0 {
			return bd
		}
		mx, _ := meanOf(x)
		bd.spreadOf(mx, ys, true)
	}
}

// maxPoints bounds the points of a loss curve: enough to see its shape,
// few enough that a 60 000-step curve does not bloat the page.
const maxPoints = 200

// binned smooths a curve by averaging bins of consecutive points (which
// also thins it to maxPoints) and drops what a log axis cannot show.
func binned(x, y []float64) (plotter.XYs, int) {
	size := max(1, (len(y)+maxPoints-1)/maxPoints)
	var xy plotter.XYs
	for lo := 0; lo < len(y); lo += size {
		hi := min(lo+size, len(y))
		mx, okx := meanOf(x[lo:hi])
		my, oky := meanOf(y[lo:hi])
		if okx && oky && plotkit.Keep(mx, my, false, true) {
			xy = append(xy, plotter.XY{X: mx, Y: my})
		}
	}
	return xy, size
}

// band is a curve over seeds: at each x the mean of the healthy runs and
// the lowest and highest of them, drawn as a line in a shaded band.
type band struct {
	mean    plotter.XYs
	lo, hi  []float64 // at the x of mean; equal where one run counts
	maxRuns int       // the most runs behind one point
}

// spreadOf adds the point x with the mean, min and max of the finite ys,
// if it can be drawn on the axes (logY: y > 0).
func (b *band) spreadOf(x float64, ys []float64, logY bool) {
	m, ok := meanOf(ys)
	if !ok || !plotkit.Keep(x, m, false, logY) {
		return
	}
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, y := range ys {
		if plotkit.Finite(y) {
			lo, hi, n = min(lo, y), max(hi, y), n+1
		}
	}
	if logY && lo <= 0 {
		lo = m // the band stops at the mean rather than leave the axis
	}
	b.mean = append(b.mean, plotter.XY{X: x, Y: m})
	b.lo, b.hi = append(b.lo, lo), append(b.hi, hi)
	b.maxRuns = max(b.maxRuns, n)
}

// add draws the band's shade (where more than one run counts) under its
// line, l with the band's mean as its points.
func (b band) add(p *plot.Plot, l plotkit.Line) error {
	if len(b.mean) == 0 {
		return nil
	}
	if b.maxRuns > 1 {
		if err := b.shade(p, l.Color); err != nil {
			return err
		}
	}
	l.XY = b.mean
	return l.Add(p)
}

// shade fills the band between lo and hi in a light c; a band of one x is
// a thick light bar from lo to hi.
func (b band) shade(p *plot.Plot, c color.Color) error {
	if len(b.mean) == 1 {
		ln, err := plotter.NewLine(plotter.XYs{{X: b.mean[0].X, Y: b.lo[0]}, {X: b.mean[0].X, Y: b.hi[0]}})
		if err != nil {
			return err
		}
		ln.Color, ln.Width = light(c), vg.Points(7)
		p.Add(ln)
		return nil
	}
	outline := make(plotter.XYs, 0, 2*len(b.mean))
	for i, pt := range b.mean {
		outline = append(outline, plotter.XY{X: pt.X, Y: b.lo[i]})
	}
	for i := len(b.mean) - 1; i >= 0; i-- {
		outline = append(outline, plotter.XY{X: b.mean[i].X, Y: b.hi[i]})
	}
	poly, err := plotter.NewPolygon(outline)
	if err != nil {
		return err
	}
	poly.Color, poly.LineStyle.Width = light(c), 0
	p.Add(poly)
	return nil
}

// light is c, translucent: the fill of a seed band.
func light(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0x40}
}

// epochBand is a number of every epoch over the healthy runs.
func epochBand(runs []Run, of func(engine.EpochStats) float64, logY bool) band {
	byEpoch := map[int][]float64{}
	for _, run := range runs {
		if healthy(run) {
			for _, e := range run.Epochs {
				byEpoch[e.Epoch] = append(byEpoch[e.Epoch], of(e))
			}
		}
	}
	var b band
	for _, e := range slices.Sorted(maps.Keys(byEpoch)) {
		b.spreadOf(float64(e), byEpoch[e], logY)
	}
	return b
}

func (f *figures) testLoss() (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := plotkit.New("Test loss, fixed learning rate", "epoch", "test loss")
	plotkit.EpochAxis(&p.X)
	drawn := false
	for _, b := range batchesOf(runs) {
		bd := epochBand(withBatch(runs, b), func(e engine.EpochStats) float64 { return e.TestLoss }, false)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Label: fmt.Sprintf("B=%d", b), Color: f.batchColor(b), Marks: true}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	return p, nil
}

// byBatch is metric against batch size for one variant of an experiment:
// at each batch size the mean over the healthy runs (measure's selection,
// as the verdicts read it) in the min–max band of its seeds; and the batch
// size of each run left out.
func byBatch(runs []Run, exp, variant string, metric func(Run) (float64, bool)) (bd band, left []float64) {
	own := withVariant(runs, variant)
	for _, b := range batchesOf(own) {
		at := withBatch(own, b)
		var ys []float64
		for _, seed := range seedsOf(at) {
			if s := measure(withSeed(at, seed), exp, variant, b, metric); s.ok() {
				ys = append(ys, s.mean)
			}
		}
		if plotkit.Keep(float64(b), 1, true, false) {
			bd.spreadOf(float64(b), ys, false)
		}
		for range unhealthy(at) {
			left = append(left, float64(b))
		}
	}
	return bd, left
}

// accuracy is the final test accuracy against batch size for each LR rule,
// with the final noise scale B_simple marked where the study measured it.
func (f *figures) accuracy() (*plot.Plot, error) {
	p := plotkit.New("Test accuracy by batch size and LR rule", "batch size", "final test accuracy (%)")
	plotkit.BatchAxis(&p.X, batchesOf(append(filter(f.r.Runs, FixedLR), filter(f.r.Runs, LRScaling)...)))
	var left []float64
	for _, exp := range []string{FixedLR, LRScaling} {
		runs := filter(f.r.Runs, exp)
		for _, v := range variantsOf(runs) {
			label := v
			if exp == FixedLR {
				label = "fixed LR"
				if len(variantsOf(runs)) > 1 {
					label += ", " + v
				}
			}
			bd, l := byBatch(runs, exp, v, percent(testAcc))
			left = append(left, l...)
			if err := bd.add(p, plotkit.Line{Label: label, Color: f.variantColor(v), Marks: true}); err != nil {
				return nil, err
			}
		}
	}
	if math.IsInf(p.Y.Min, 0) {
		return nil, nil
	}
	plotkit.PadLinear(&p.Y)
	if b, ok := finalBSimple(f.r); ok {
		if err := plotkit.Vertical(p, b, "B_simple ≈ "+batchQ.format(b), plotkit.Reference()); err != nil {
			return nil, err
		}
	}
	return p, addEdgeMarks(p, left)
}

// fixedByBatch is metric of the fixed-LR runs against batch size, a dot in
// each batch size's colour, its seeds' min–max as a bar, on a grey line.
func (f *figures) fixedByBatch(title, yLabel string, metric func(Run) (float64, bool)) (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := plotkit.New(title, "batch size", yLabel)
	plotkit.BatchAxis(&p.X, batchesOf(runs))
	var all plotter.XYs
	var left []float64
	for _, v := range variantsOf(runs) {
		bd, l := byBatch(runs, FixedLR, v, metric)
		left = append(left, l...)
		for i, pt := range bd.mean {
			one := band{mean: bd.mean[i : i+1], lo: bd.lo[i : i+1], hi: bd.hi[i : i+1], maxRuns: bd.maxRuns}
			if err := one.add(p, plotkit.Line{Color: f.batchColor(int(pt.X)), Marks: true, Radius: 3}); err != nil {
				return nil, err
			}
		}
		all = append(all, bd.mean...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	ln, err := plotter.NewLine(all)
	if err != nil {
		return nil, err
	}
	ln.Color, ln.Width = plotkit.Reference(), vg.Points(1)
	p.Add(ln)
	plotkit.PadLinear(&p.Y)
	return p, addEdgeMarks(p, left)
}

func (f *figures) gap() (*plot.Plot, error) {
	return f.fixedByBatch("Generalization gap", "train − test accuracy (points)", percent(gap))
}

func (f *figures) sharpness() (*plot.Plot, error) {
	return f.fixedByBatch("Sharpness of the final weights", "sharpness φ (%)", sharpness)
}

// epochCost is a cost of every recorded epoch against batch size, mean over
// runs and epochs. The epochs of a diverged or failed run ran and cost what
// they cost, so every recorded epoch counts here.
func epochCost(runs []Run, of func(engine.EpochStats) float64) plotter.XYs {
	var xy plotter.XYs
	for _, b := range batchesOf(runs) {
		var vs []float64
		for _, run := range withBatch(runs, b) {
			for _, e := range run.Epochs {
				vs = append(vs, of(e))
			}
		}
		if m, ok := meanOf(vs); ok && plotkit.Keep(float64(b), m, true, true) {
			xy = append(xy, plotter.XY{X: float64(b), Y: m})
		}
	}
	return xy
}

// cost is one log-log plot of per-epoch costs of the fixed-LR sweep, a line
// for each of series drawn from the matching function of of.
func (f *figures) cost(title, yLabel string, series []plotkit.Line, of []func(engine.EpochStats) float64) (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := plotkit.New(title, "batch size", yLabel)
	plotkit.BatchAxis(&p.X, batchesOf(runs))
	plotkit.LogAxis(&p.Y)
	drawn := false
	for i, l := range series {
		l.XY, l.Marks = epochCost(runs, of[i]), true
		drawn = drawn || len(l.XY) > 0
		if err := l.Add(p); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	plotkit.WidenLog(&p.Y)
	return p, nil
}

func (f *figures) counts() (*plot.Plot, error) {
	return f.cost("Updates and host→device copies per epoch", "count per epoch",
		[]plotkit.Line{
			{Label: "parameter updates", Color: plotkit.SeriesColor(1)},
			{Label: "host→device copies", Color: plotkit.SeriesColor(2), Dashed: true},
		},
		[]func(engine.EpochStats) float64{
			func(e engine.EpochStats) float64 { return float64(e.Updates) },
			func(e engine.EpochStats) float64 { return float64(e.H2DCopies) },
		})
}

func (f *figures) seconds() (*plot.Plot, error) {
	return f.cost("Time per epoch", "seconds per epoch",
		[]plotkit.Line{
			{Label: "whole training pass", Color: plotkit.SeriesColor(0)},
			{Label: "forward + backward", Color: plotkit.SeriesColor(1), Dashed: true},
			{Label: "optimizer update", Color: plotkit.SeriesColor(3), Dashed: true},
			{Label: "load + host→device", Color: plotkit.SeriesColor(2), Dashed: true},
		},
		[]func(engine.EpochStats) float64{
			func(e engine.EpochStats) float64 { return e.Seconds },
			func(e engine.EpochStats) float64 { return e.ComputeSeconds },
			func(e engine.EpochStats) float64 { return e.UpdateSeconds },
			func(e engine.EpochStats) float64 { return e.TransferSeconds },
		})
}

// byEpoch draws a number of every epoch, one line per variant of an
// experiment, in the min–max band of its seeds; a log batch-size axis when
// batchAxis is set.
func (f *figures) byEpoch(exp, title, yLabel string, of func(engine.EpochStats) float64, batchAxis bool) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	p := plotkit.New(title, "epoch", yLabel)
	plotkit.EpochAxis(&p.X)
	if batchAxis {
		var bs []int
		for _, run := range runs {
			for _, e := range run.Epochs {
				bs = append(bs, e.Batch)
			}
		}
		slices.Sort(bs)
		plotkit.BatchAxis(&p.Y, slices.Compact(bs))
	}
	drawn := false
	for _, v := range variantsOf(runs) {
		bd := epochBand(withVariant(runs, v), of, batchAxis)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Label: v, Color: f.variantColor(v), Marks: true}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	if batchAxis {
		plotkit.WidenLog(&p.Y)
	}
	return p, nil
}

func (f *figures) scheduleAccuracy() (*plot.Plot, error) {
	return f.byEpoch(Schedule, "Test accuracy per epoch", "test accuracy (%)",
		func(e engine.EpochStats) float64 { return 100 * e.TestAccuracy }, false)
}

func (f *figures) scheduleBatch() (*plot.Plot, error) {
	return f.byEpoch(Schedule, "Batch size per epoch", "batch size",
		func(e engine.EpochStats) float64 { return float64(e.Batch) }, true)
}

// updatesBars is the total number of updates of each variant of an
// experiment, mean over its healthy runs.
func (f *figures) updatesBars(exp string) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	p := plotkit.New("Parameter updates of the whole run", "", "total updates")
	var names, labels []string
	var tops plotter.XYs
	for _, v := range variantsOf(runs) {
		s := measure(runs, exp, v, 0, updates)
		if !s.ok() {
			continue
		}
		bar, err := plotter.NewBarChart(plotter.Values{s.mean}, vg.Points(40))
		if err != nil {
			return nil, err
		}
		x := float64(len(names))
		bar.XMin, bar.Color, bar.LineStyle.Width = x, f.variantColor(v), 0
		p.Add(bar)
		tops = append(tops, plotter.XY{X: x, Y: s.mean})
		labels = append(labels, strconv.Itoa(int(math.Round(s.mean))))
		names = append(names, v)
	}
	if len(names) == 0 {
		return nil, nil
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: tops, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i] = text.Style{Font: plotkit.Font(9, false), XAlign: draw.XCenter, Handler: p.TextHandler}
	}
	lb.Offset.Y = vg.Points(3)
	p.Add(lb)
	p.Y.Min, p.Y.Max = 0, 1.12*p.Y.Max // room for the labels
	p.NominalX(names...)
	return p, nil
}

// regimeAccuracy is the final test (dot, mean ± std) and train (ring)
// accuracy of each variant of the regime experiment.
func (f *figures) regimeAccuracy() (*plot.Plot, error) {
	runs := filter(f.r.Runs, Regime)
	p := plotkit.New("Final accuracy by variant", "", "accuracy (%)")
	var names []string
	var left []float64
	var train plotter.XYs
	for _, v := range variantsOf(runs) {
		s := measure(runs, Regime, v, 0, percent(testAcc))
		bad := len(unhealthy(withVariant(runs, v)))
		if !s.ok() && bad == 0 {
			continue
		}
		x := float64(len(names))
		names = append(names, v)
		for range bad {
			left = append(left, x)
		}
		if !s.ok() {
			continue
		}
		l := plotkit.Line{Color: f.variantColor(v), XY: plotter.XYs{{X: x, Y: s.mean}}, Err: []float64{s.std}, Marks: true, Radius: 3.5}
		if err := l.Add(p); err != nil {
			return nil, err
		}
		if t := measure(runs, Regime, v, 0, percent(trainAcc)); t.ok() {
			train = append(train, plotter.XY{X: x, Y: t.mean})
		}
	}
	if math.IsInf(p.Y.Min, 0) {
		return nil, nil
	}
	dot, err := plotter.NewScatter(plotter.XYs{{}})
	if err != nil {
		return nil, err
	}
	dot.Shape, dot.Color, dot.Radius = draw.CircleGlyph{}, plotkit.Reference(), vg.Points(3.5)
	p.Legend.Add("test", dot) // a legend entry only, not drawn
	if len(train) > 0 {
		sc, err := plotter.NewScatter(train)
		if err != nil {
			return nil, err
		}
		sc.Shape, sc.Color, sc.Radius = plotkit.BoldRing{}, plotkit.Reference(), vg.Points(5)
		p.Add(sc)
		p.Legend.Add("train", sc)
	}
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.NominalX(names...)
	plotkit.PadLinear(&p.Y)
	return p, addEdgeMarks(p, left)
}

// noise is B_simple against updates for each noise run, with the batch
// sizes of the sweep as reference lines; hidden counts the estimates that
// cannot be drawn (not yet finite and positive).
func (f *figures) noise() (p *plot.Plot, hidden int, err error) {
	runs := filter(f.r.Runs, Noise)
	p = plotkit.New("Gradient noise scale during training", "parameter updates", "B_simple = tr(Σ) / |G|²")
	plotkit.LogAxis(&p.Y)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, run := range runs {
		var xy plotter.XYs
		for _, pt := range run.Noise {
			if !plotkit.Keep(float64(pt.Updates), pt.BSimple, false, true) {
				hidden++
				continue
			}
			xy = append(xy, plotter.XY{X: float64(pt.Updates), Y: pt.BSimple})
			lo, hi = min(lo, float64(pt.Updates)), max(hi, float64(pt.Updates))
		}
		l := plotkit.Line{Label: fmt.Sprintf("B=%d, seed %d", run.Batch, run.Seed), Color: plotkit.SeriesColor(i + 1), XY: xy, Marks: true}
		if err := l.Add(p); err != nil {
			return nil, 0, err
		}
	}
	if math.IsInf(lo, 0) {
		return nil, hidden, nil
	}
	var refs plotter.XYs
	var names []string
	for _, b := range f.r.Preset.Batches {
		if b <= 0 {
			continue
		}
		ln, err := plotter.NewLine(plotter.XYs{{X: lo, Y: float64(b)}, {X: hi, Y: float64(b)}})
		if err != nil {
			return nil, 0, err
		}
		ln.Color, ln.Width, ln.Dashes = f.batchColor(b), vg.Points(1), []vg.Length{vg.Points(3), vg.Points(2)}
		p.Add(ln)
		refs = append(refs, plotter.XY{X: lo, Y: float64(b)})
		names = append(names, fmt.Sprintf("B=%d", b))
	}
	if len(refs) > 0 {
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: refs, Labels: names})
		if err != nil {
			return nil, 0, err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i] = text.Style{Font: plotkit.Font(8, false), Color: plotkit.Reference(), YAlign: draw.YBottom, Handler: p.TextHandler}
		}
		lb.Offset = vg.Point{X: vg.Points(2), Y: vg.Points(1)}
		p.Add(lb)
	}
	plotkit.WidenLog(&p.Y)
	return p, hidden, nil
}

// addEdgeMarks marks the runs left out of a plot of final numbers with a
// × at their x on the bottom edge: they have no number to place, and
// leaving them out would hide them. Call it after the data, so that the y
// range is the healthy runs'.
func addEdgeMarks(p *plot.Plot, xs []float64) error {
	xy := make(plotter.XYs, len(xs))
	for i, x := range xs {
		xy[i] = plotter.XY{X: x, Y: p.Y.Min}
	}
	return addMarks(p, xy, "diverged or failed: not in mean")
}

// addMarks draws a bold × at each point, in the legend as label.
func addMarks(p *plot.Plot, at plotter.XYs, label string) error {
	if len(at) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(at)
	if err != nil {
		return err
	}
	sc.Shape, sc.Color, sc.Radius = plotkit.BoldCross{}, plotkit.Mark(), vg.Points(4.5)
	p.Add(sc)
	p.Legend.Add(label, sc)
	return nil
}
