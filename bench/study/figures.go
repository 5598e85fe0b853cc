package study

import (
	"cmp"
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"

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
// instead, "" for a healthy run: it failed with an error or before its
// first epoch, or by the rule the verdicts apply (Run.failure: diverged,
// collapsed to chance, loss not below its start).
func failure(run Run) string {
	switch {
	case run.Error != "" && !run.Diverged:
		return "failed: " + run.Error
	case len(run.Epochs) == 0:
		return "failed before its first epoch"
	}
	return run.failure()
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

// counted says whether a run's final numbers count: healthy, and at its
// protocol's target where it has one (a run short of it is compared at
// another point than the rest, so the verdicts leave it out too).
func counted(run Run) bool { return healthy(run) && run.Converged() }

// uncounted lists the runs whose final numbers do not count.
func uncounted(runs []Run) []Run {
	return slices.DeleteFunc(slices.Clone(runs), counted)
}

// atTarget is metric where the run counted, nothing elsewhere.
func atTarget(metric func(Run) (float64, bool)) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) {
		if !counted(r) {
			return 0, false
		}
		return metric(r)
	}
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
	snapLog(&p.Y)
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

// epochBand is a number of every epoch over the healthy runs, against
// epochs, or against at(e) (the updates so far, say) where at is not nil.
func epochBand(runs []Run, at, of func(engine.EpochStats) float64, logY bool) band {
	ys, xs := map[int][]float64{}, map[int][]float64{}
	for _, run := range runs {
		if healthy(run) {
			for _, e := range run.Epochs {
				x := float64(e.Epoch)
				if at != nil {
					x = at(e)
				}
				ys[e.Epoch], xs[e.Epoch] = append(ys[e.Epoch], of(e)), append(xs[e.Epoch], x)
			}
		}
	}
	var b band
	for _, e := range slices.Sorted(maps.Keys(ys)) {
		x, _ := meanOf(xs[e])
		b.spreadOf(x, ys[e], logY)
	}
	return b
}

func (f *figures) testLoss() (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := plotkit.New("Test loss, fixed learning rate", "epoch", "test loss")
	plotkit.EpochAxis(&p.X)
	drawn := false
	for _, b := range batchesOf(runs) {
		bd := epochBand(withBatch(runs, b), nil, func(e engine.EpochStats) float64 { return e.TestLoss }, false)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Label: fmt.Sprintf("B=%d", b), Color: f.batchColor(b), Marks: true}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	return p, markEnds(p, runs, nil, func(e engine.EpochStats) float64 { return e.TestLoss })
}

// markEnds marks each failed run of an epoch plot with a × at its last
// recorded epoch (at(e) on the x axis where at is not nil), its value held
// inside the healthy runs' range: a run that blew up or collapsed shows
// where it ended without stretching the axis. Call it after the data.
func markEnds(p *plot.Plot, runs []Run, at, of func(engine.EpochStats) float64) error {
	var ends plotter.XYs
	for _, run := range runs {
		if healthy(run) || len(run.Epochs) == 0 {
			continue
		}
		last := run.Final()
		for i := len(run.Epochs) - 1; i >= 0 && !plotkit.Finite(of(last)); i-- {
			last = run.Epochs[i] // its last finite value
		}
		x, y := float64(last.Epoch), of(last)
		if at != nil {
			x = at(last)
		}
		if !plotkit.Finite(y) {
			y = p.Y.Max
		}
		ends = append(ends, plotter.XY{X: min(max(x, p.X.Min), p.X.Max), Y: min(max(y, p.Y.Min), p.Y.Max)})
	}
	return addMarks(p, ends, "failed: not in band")
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
			if s := measure(withSeed(at, seed), exp, variant, b, atTarget(metric)); s.ok() {
				ys = append(ys, s.mean)
			}
		}
		if plotkit.Keep(float64(b), 1, true, false) {
			bd.spreadOf(float64(b), ys, false)
		}
		for range uncounted(at) {
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
	pr := f.r.Preset
	if base := measure(filter(f.r.Runs, FixedLR), FixedLR, "none", pr.BaseBatch, atTarget(testAcc)); base.ok() && pr.ScalingMargin > 0 {
		if err := horizontal(p, 100*(base.mean-pr.ScalingMargin), fmt.Sprintf("B₀'s accuracy − %s", points.with(pr.ScalingMargin))); err != nil {
			return nil, err
		}
	}
	if fit, ok := fitCriticalBatch(f.r.Runs); ok && fit.interval.Mean > 0 {
		if err := plotkit.Vertical(p, fit.interval.Mean, "B_crit ≈ "+batchQ.format(fit.interval.Mean), plotkit.Mark()); err != nil {
			return nil, err
		}
	}
	return p, addEdgeMarks(p, left)
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

// cost is one log-log plot of per-epoch costs of the cost experiment's
// runs, a line for each of series drawn from the matching function of of.
func (f *figures) cost(title, yLabel string, series []plotkit.Line, of []func(engine.EpochStats) float64) (*plot.Plot, error) {
	runs := filter(f.r.Runs, Cost)
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
	snapLog(&p.Y)
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

// byEpoch draws a number of every epoch, one line per variant of an
// experiment, in the min–max band of its seeds; against updates instead of
// epochs with byUpdates; on a log batch-size axis with batchAxis; with a
// dashed line at target where it is not 0.
func (f *figures) byEpoch(exp, title, yLabel string, of func(engine.EpochStats) float64, byUpdates, batchAxis bool, target float64) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	var at func(engine.EpochStats) float64
	p := plotkit.New(title, "epoch", yLabel)
	epochs := 0
	for _, run := range runs {
		epochs = max(epochs, len(run.Epochs))
	}
	switch {
	case byUpdates:
		at = func(e engine.EpochStats) float64 { return float64(e.TotalUpdates) }
		p.X.Label.Text = "parameter updates"
		p.X.Min = 0
	case epochs <= 40: // a tick per epoch; beyond, the plain linear ticks
		plotkit.EpochAxis(&p.X)
	}
	marks := epochs <= 30 // a dot per epoch while they stay apart
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
		bd := epochBand(withVariant(runs, v), at, of, batchAxis)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Label: v, Color: f.variantColor(v), Marks: marks}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	if batchAxis {
		snapLog(&p.Y)
	} else if err := markEnds(p, runs, at, of); err != nil {
		return nil, err
	}
	if target != 0 {
		p.Y.Max = max(p.Y.Max, target)
		plotkit.PadLinear(&p.Y)
		if err := horizontal(p, target, "target "+accuracy.with(target/100)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (f *figures) scheduleAccuracy() (*plot.Plot, error) {
	return f.byEpoch(Schedule, "Test accuracy per epoch", "test accuracy (%)", pctOf(testAccOf), false, false, 0)
}

func (f *figures) scheduleAccuracyByUpdates() (*plot.Plot, error) {
	return f.byEpoch(Schedule, "Test accuracy against updates", "test accuracy (%)", pctOf(testAccOf), true, false, 0)
}

func (f *figures) scheduleBatch() (*plot.Plot, error) {
	return f.byEpoch(Schedule, "Batch size per epoch", "batch size",
		func(e engine.EpochStats) float64 { return float64(e.Batch) }, false, true, 0)
}

// keskarTrain is the training accuracy of each epoch of Keskar's SB and
// LB runs, with their protocol's target.
func (f *figures) keskarTrain() (*plot.Plot, error) {
	return f.byEpoch(Keskar, "Training accuracy until the target", "training accuracy (%)",
		pctOf(func(e engine.EpochStats) float64 { return e.TrainAccuracy }), false, false, 100*f.r.Preset.Keskar.Target)
}

func testAccOf(e engine.EpochStats) float64 { return e.TestAccuracy }

// pctOf is an epoch's fraction in percent.
func pctOf(of func(engine.EpochStats) float64) func(engine.EpochStats) float64 {
	return func(e engine.EpochStats) float64 { return 100 * of(e) }
}

// horizontal draws a dashed grey reference line at y across p's x range
// (set it first), in the legend as label.
func horizontal(p *plot.Plot, y float64, label string) error {
	ln, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: y}, {X: p.X.Max, Y: y}})
	if err != nil {
		return err
	}
	ln.Color, ln.Width, ln.Dashes = plotkit.Reference(), vg.Points(1.2), []vg.Length{vg.Points(3), vg.Points(2)}
	p.Add(ln)
	p.Legend.Add(label, ln)
	return nil
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
		labels = append(labels, countQ.format(s.mean))
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

// finalAccuracy is the final test (dot, mean ± std) and train (ring)
// accuracy of each variant of an experiment; runs left out are × at the
// bottom.
func (f *figures) finalAccuracy(exp string) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	p := plotkit.New("Final accuracy by variant", "", "accuracy (%)")
	var names []string
	var left []float64
	var train plotter.XYs
	for _, v := range variantsOf(runs) {
		s := measure(runs, exp, v, 0, atTarget(percent(testAcc)))
		bad := len(uncounted(withVariant(runs, v)))
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
		if t := measure(runs, exp, v, 0, atTarget(percent(trainAcc))); t.ok() {
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

// byVariant is metric of each variant of an experiment: a dot at the mean
// of its healthy runs, a bar over its seeds' min–max, × for runs left out.
func (f *figures) byVariant(exp, title, yLabel string, metric func(Run) (float64, bool)) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	p := plotkit.New(title, "", yLabel)
	var names []string
	var left []float64
	drawn := false
	for _, v := range variantsOf(runs) {
		own := withVariant(runs, v)
		var ys []float64
		for _, seed := range seedsOf(own) {
			if s := measure(withSeed(own, seed), exp, v, 0, atTarget(metric)); s.ok() {
				ys = append(ys, s.mean)
			}
		}
		bad := len(uncounted(own))
		if len(ys) == 0 && bad == 0 {
			continue
		}
		x := float64(len(names))
		names = append(names, v)
		for range bad {
			left = append(left, x)
		}
		var bd band
		bd.spreadOf(x, ys, false)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Color: f.variantColor(v), Marks: true, Radius: 3.5}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.NominalX(names...)
	plotkit.PadLinear(&p.Y)
	return p, addEdgeMarks(p, left)
}

// noise is B_simple against updates over the noise runs (the mean over
// seeds in its min–max band), the batch sizes of the sweep as reference
// lines, and, where the critical batch was fitted, B_crit with its
// interval as a grey band and each run's B_simple where its training loss
// reached the fit's target (rings); hidden counts the estimates that
// cannot be drawn (not yet finite and positive).
func (f *figures) noise() (p *plot.Plot, hidden int, err error) {
	runs := filter(f.r.Runs, Noise)
	p = plotkit.New("Gradient noise scale during training", "parameter updates", "B_simple = tr(Σ) / |G|²")
	plotkit.LogAxis(&p.Y)
	byIndex := map[int][]NoisePoint{}
	for _, run := range runs {
		if failure(run) != "" && len(run.Noise) == 0 {
			continue
		}
		for i, pt := range run.Noise {
			if !plotkit.Keep(float64(pt.Updates), pt.BSimple, false, true) {
				hidden++
				continue
			}
			byIndex[i] = append(byIndex[i], pt)
		}
	}
	var bd band
	for _, i := range slices.Sorted(maps.Keys(byIndex)) {
		var x, y []float64
		for _, pt := range byIndex[i] {
			x, y = append(x, float64(pt.Updates)), append(y, pt.BSimple)
		}
		mx, _ := meanOf(x)
		bd.spreadOf(mx, y, true)
	}
	if len(bd.mean) == 0 {
		return nil, hidden, nil
	}
	lo, hi := bd.mean[0].X, bd.mean[len(bd.mean)-1].X
	if lo == hi {
		lo, hi = lo/2, hi*2
	}
	fit, fitted := fitCriticalBatch(f.r.Runs)
	if iv := fit.interval; fitted && plotkit.Finite(iv.Mean) && iv.Mean > 0 {
		label := "B_crit ≈ " + batchQ.format(iv.Mean) + " (fit)"
		if plotkit.Finite(iv.Lo) && plotkit.Finite(iv.Hi) && iv.Lo > 0 {
			label += ", its CI shaded"
			poly, err := plotter.NewPolygon(plotter.XYs{{X: lo, Y: iv.Lo}, {X: hi, Y: iv.Lo}, {X: hi, Y: iv.Hi}, {X: lo, Y: iv.Hi}})
			if err != nil {
				return nil, 0, err
			}
			poly.Color, poly.LineStyle.Width = light(plotkit.Reference()), 0
			p.Add(poly)
		}
		ln, err := plotter.NewLine(plotter.XYs{{X: lo, Y: iv.Mean}, {X: hi, Y: iv.Mean}})
		if err != nil {
			return nil, 0, err
		}
		ln.Color, ln.Width = plotkit.Mark(), vg.Points(1.4)
		p.Add(ln)
		p.Legend.Add(label, ln)
	}
	if err := bd.add(p, plotkit.Line{Label: fmt.Sprintf("B_simple, %s", count(len(runs), "run")), Color: plotkit.SeriesColor(1), Marks: true}); err != nil {
		return nil, 0, err
	}
	if fitted {
		var read plotter.XYs
		for _, run := range runs {
			if pt, ok := bSimpleAt(run, fit.target); ok && plotkit.Keep(float64(pt.Updates), pt.BSimple, false, true) {
				read = append(read, plotter.XY{X: float64(pt.Updates), Y: pt.BSimple})
			}
		}
		if len(read) > 0 {
			sc, err := plotter.NewScatter(read)
			if err != nil {
				return nil, 0, err
			}
			sc.Shape, sc.Color, sc.Radius = plotkit.BoldRing{}, plotkit.SeriesColor(2), vg.Points(5)
			p.Add(sc)
			p.Legend.Add("at the fit's target loss "+lossQ.format(fit.target), sc)
		}
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
	snapLog(&p.Y)
	return p, hidden, nil
}

// bSimpleAt is a noise run's first estimate where its training loss had
// come down to target, as the noise-scale rule reads it.
func bSimpleAt(run Run, target float64) (NoisePoint, bool) {
	i := slices.IndexFunc(run.Noise, func(p NoisePoint) bool { return p.TrainLoss > 0 && p.TrainLoss <= target })
	if i < 0 {
		return NoisePoint{}, false
	}
	return run.Noise[i], true
}

// criticalBatch is the updates S(B) each batch size needs to reach the
// fit's target loss (dots) and the fitted S(B) = S_min(1 + B_crit/B)
// (line), on log–log axes; the caption gives B_crit with its interval.
func (f *figures) criticalBatch() (*plot.Plot, error) {
	fit, ok := fitCriticalBatch(f.r.Runs)
	if len(fit.steps) == 0 {
		return nil, nil
	}
	p := plotkit.New("Updates to the target loss, S(B)", "batch size", "updates to reach the target loss")
	bs := sortedKeys(fit.steps)
	plotkit.BatchAxis(&p.X, bs)
	plotkit.LogAxis(&p.Y)
	var pts plotter.XYs
	for _, b := range bs {
		if plotkit.Keep(float64(b), fit.steps[b], true, true) {
			pts = append(pts, plotter.XY{X: float64(b), Y: fit.steps[b]})
		}
	}
	if bCrit, sMin, good := sMinFit(fit.steps); ok && good {
		var curve plotter.XYs
		lo, hi := float64(bs[0]), float64(bs[len(bs)-1])
		for i := range 41 {
			b := lo * math.Pow(hi/lo, float64(i)/40)
			curve = append(curve, plotter.XY{X: b, Y: sMin * (1 + bCrit/b)})
		}
		if err := (plotkit.Line{Label: fmt.Sprintf("fit: S_min = %s, B_crit = %s", countQ.format(sMin), batchQ.format(bCrit)), Color: plotkit.Reference(), XY: curve}).Add(p); err != nil {
			return nil, err
		}
		if iv := fit.interval; plotkit.Finite(iv.Lo) && plotkit.Finite(iv.Hi) && iv.Hi > lo && iv.Lo < hi {
			l, h := max(iv.Lo, lo), min(iv.Hi, hi) // the interval, where the plot reaches
			bottom, top := math.Inf(1), math.Inf(-1)
			for _, pt := range append(slices.Clone(curve), pts...) {
				bottom, top = min(bottom, pt.Y), max(top, pt.Y)
			}
			poly, err := plotter.NewPolygon(plotter.XYs{{X: l, Y: bottom}, {X: h, Y: bottom}, {X: h, Y: top}, {X: l, Y: top}})
			if err != nil {
				return nil, err
			}
			poly.Color, poly.LineStyle.Width = light(plotkit.Reference()), 0
			p.Add(poly)
			p.Legend.Add(fmt.Sprintf("B_crit's %s %% CI", fixed(100*iv.Level, 0)), poly)
		}
		if bCrit >= lo && bCrit <= hi {
			if err := plotkit.Vertical(p, bCrit, "B_crit", plotkit.Mark()); err != nil {
				return nil, err
			}
		}
	}
	if len(pts) > 0 {
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Shape, sc.Color, sc.Radius = draw.CircleGlyph{}, plotkit.SeriesColor(1), vg.Points(3.5)
		p.Add(sc)
		p.Legend.Add("measured: best sweep, mean of seeds", sc)
	}
	snapLog(&p.Y)
	return p, nil
}

// sMinFit is the fit of the noise-scale rule (bCritOf) with its S_min: for
// the fitted B_crit, S_min is the least-squares scale of 1 + B_crit/B,
// which the joint least-squares line S = a + b/B has as its a.
func sMinFit(steps map[int]float64) (bCrit, sMin float64, ok bool) {
	bCrit, ok = bCritOf(steps)
	if !ok {
		return 0, 0, false
	}
	var su, uu float64
	for b, s := range steps {
		u := 1 + bCrit/float64(b)
		su, uu = su+s*u, uu+u*u
	}
	return bCrit, su / uu, true
}

// timeToTarget is the wall time of the training passes until the test
// accuracy first reached the cost experiment's target, by batch size:
// one thin line per seed (the comparison is paired), the mean over seeds
// in its min–max band, × at the top for a run that did not get there.
func (f *figures) timeToTarget() (*plot.Plot, error) {
	runs := filter(f.r.Runs, Cost)
	p := plotkit.New("Time to the target test accuracy", "batch size", "seconds of training to the target")
	plotkit.BatchAxis(&p.X, batchesOf(runs))
	plotkit.LogAxis(&p.Y)
	secs := func(r Run) (float64, bool) {
		if r.Reached == nil {
			return 0, false
		}
		return r.Reached.Seconds, true
	}
	for i, seed := range seedsOf(runs) {
		var xy plotter.XYs
		for _, run := range withSeed(runs, seed) {
			if v, ok := atTarget(secs)(run); ok && plotkit.Keep(float64(run.Batch), v, true, true) {
				xy = append(xy, plotter.XY{X: float64(run.Batch), Y: v})
			}
		}
		slices.SortFunc(xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		label := ""
		if i == 0 && len(seedsOf(runs)) > 1 {
			label = "one seed"
		}
		if err := (plotkit.Line{Label: label, Color: plotkit.Reference(), XY: xy, Width: 0.8, Dashed: true}).Add(p); err != nil {
			return nil, err
		}
	}
	var left []float64
	var drawn bool
	for _, v := range variantsOf(runs) {
		bd, l := byBatch(runs, Cost, v, secs)
		left = append(left, l...)
		drawn = drawn || len(bd.mean) > 0
		if err := bd.add(p, plotkit.Line{Label: v + " rule, mean of " + count(len(seedsOf(runs)), "seed"), Color: plotkit.SeriesColor(1), Marks: true}); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	snapLog(&p.Y)
	if len(left) > 0 {
		p.Y.Max *= 1.25 // room for the marks above the data
	}
	at := make(plotter.XYs, len(left))
	for i, x := range left {
		at[i] = plotter.XY{X: x, Y: p.Y.Max}
	}
	return p, addMarks(p, at, "did not reach the target or failed")
}

// costSplit is where the time to the target went, by batch size: the
// whole training passes and their split by device events, mean over the
// runs that got there.
func (f *figures) costSplit() (*plot.Plot, error) {
	runs := filter(f.r.Runs, Cost)
	p := plotkit.New("Where the time to the target goes", "batch size", "seconds to the target")
	plotkit.BatchAxis(&p.X, batchesOf(runs))
	plotkit.LogAxis(&p.Y)
	parts := []struct {
		label string
		of    func(*Reached) float64
	}{
		{"whole training passes", func(r *Reached) float64 { return r.Seconds }},
		{"forward + backward", func(r *Reached) float64 { return r.ComputeSeconds }},
		{"optimizer update", func(r *Reached) float64 { return r.UpdateSeconds }},
		{"load + host→device", func(r *Reached) float64 { return r.TransferSeconds }},
	}
	drawn := false
	for i, part := range parts {
		var xy plotter.XYs
		for _, b := range batchesOf(runs) {
			var vs []float64
			for _, run := range withBatch(runs, b) {
				if counted(run) && run.Reached != nil {
					vs = append(vs, part.of(run.Reached))
				}
			}
			if m, ok := meanOf(vs); ok && plotkit.Keep(float64(b), m, true, true) {
				xy = append(xy, plotter.XY{X: float64(b), Y: m})
			}
		}
		drawn = drawn || len(xy) > 0
		if err := (plotkit.Line{Label: part.label, Color: plotkit.SeriesColor([]int{0, 1, 3, 2}[i]), XY: xy, Marks: true, Dashed: i > 0}).Add(p); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	snapLog(&p.Y)
	return p, nil
}

// snapLog widens a log axis (plotkit.WidenLog) and then, where its range
// holds fewer than two of the 1-2-5 values the log ticks label, out to the
// nearest of them: plotkit would otherwise label its two ends with all
// their digits (0.0461775).
func snapLog(a *plot.Axis) {
	plotkit.WidenLog(a)
	if !(a.Min > 0) || !plotkit.Finite(a.Max) {
		return
	}
	oneTwoFive := func(v float64, up bool) float64 { // the nearest 1-2-5 value at or below v (above, with up)
		e := math.Pow(10, math.Floor(math.Log10(v)))
		steps := []float64{1, 2, 5, 10}
		if up {
			for _, m := range steps {
				if m*e >= v*(1-1e-12) {
					return m * e
				}
			}
		}
		for i := len(steps) - 1; i >= 0; i-- {
			if steps[i]*e <= v*(1+1e-12) {
				return steps[i] * e
			}
		}
		return e
	}
	labelled := func() int {
		n := 0
		for v := oneTwoFive(a.Min, true); v <= a.Max*(1+1e-12); v = oneTwoFive(v*1.0001, true) {
			n++
		}
		return n
	}
	if labelled() < 2 {
		a.Min = oneTwoFive(a.Min, false)
	}
	if labelled() < 2 {
		a.Max = oneTwoFive(a.Max, true)
	}
}

// addEdgeMarks marks the runs left out of a plot of final numbers (failed,
// or short of their target) with a
// × at their x on the bottom edge: they have no number to place, and
// leaving them out would hide them. Call it after the data, so that the y
// range is the healthy runs'.
func addEdgeMarks(p *plot.Plot, xs []float64) error {
	xy := make(plotter.XYs, len(xs))
	for i, x := range xs {
		xy[i] = plotter.XY{X: x, Y: p.Y.Min}
	}
	return addMarks(p, xy, "failed or short of target: not in mean")
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
