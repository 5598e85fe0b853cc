package study

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"image/color"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/batchlab/batchlab/engine"
)

// The plots of the report. Each is drawn from the Results alone and returns
// a nil plot when the study has nothing to show for it. gonum/plot panics
// on NaN and ±Inf, and on values ≤ 0 on a log axis, so every point passes
// keep before it reaches a plotter; diverged runs are drawn as such (dashed
// lines, × marks) rather than averaged in or dropped.

const (
	plotWidth  = 16 * vg.Centimeter
	plotHeight = 10 * vg.Centimeter
)

// Okabe–Ito and Tableau colours: distinguishable, also for most colour-blind
// readers. Batch sizes take the first list in ascending order, variants the
// second in order of appearance (the study has nine), so a colour means the
// same thing in every plot.
var (
	batchPalette   = rgb(0x4e79a7, 0xf28e2b, 0x59a14f, 0xe15759, 0xb07aa1, 0x9c755f, 0x76b7b2, 0xff9da7)
	variantPalette = rgb(0x555555, 0x0072b2, 0xd55e00, 0x009e73, 0xcc79a7, 0xe69f00, 0x56b4e9, 0x8c564b, 0x7b3294, 0xa6961c)
	gridColor      = rgb(0xe4e4e4)[0]
	refColor       = rgb(0x999999)[0]
	divergedColor  = rgb(0x222222)[0]
)

func rgb(hex ...uint32) []color.Color {
	cs := make([]color.Color, len(hex))
	for i, v := range hex {
		cs[i] = color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
	}
	return cs
}

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

func (f *figures) batchColor(b int) color.Color {
	return batchPalette[max(slices.Index(f.batches, b), 0)%len(batchPalette)]
}

func (f *figures) variantColor(v string) color.Color {
	return variantPalette[max(slices.Index(f.variants, v), 0)%len(variantPalette)]
}

// Data selection. The means and spreads over seeds come from measure
// (findings.go), so a plot and a verdict never disagree about which runs
// count: the healthy ones, finished without an error and not diverged.

func healthy(run Run) bool { return run.Error == "" && !run.Diverged && len(run.Epochs) > 0 }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// keep reports whether a point can be drawn on axes that are logarithmic
// where logX or logY is set.
func keep(x, y float64, logX, logY bool) bool {
	return finite(x) && finite(y) && (!logX || x > 0) && (!logY || y > 0)
}

// meanOf is the mean of the finite values of xs; ok is false when there is none.
func meanOf(xs []float64) (mean float64, ok bool) {
	n := 0
	for _, x := range xs {
		if finite(x) {
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

func countDiverged(runs []Run) int {
	n := 0
	for _, run := range runs {
		if run.Diverged {
			n++
		}
	}
	return n
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
			if v := run.Noise[i].BSimple; finite(v) && v > 0 {
				xs = append(xs, v)
				break
			}
		}
	}
	return meanOf(xs)
}

// Plot construction.

func sans(size float64, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Points(size)}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return f
}

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sans(12, true)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(10, false)
		a.Tick.Label.Font = sans(9, false)
		a.Color = refColor
		a.Tick.Color = refColor
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.TickerFunc(linearTicks), plot.TickerFunc(linearTicks)
	p.Legend.TextStyle.Font = sans(9, false)
	p.Legend.Padding = vg.Points(3)
	p.Legend.ThumbnailWidth = vg.Points(16)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	p.Add(g)
	return p
}

// logAxis makes a a log axis with 1-2-5 ticks, or with ticks at the given
// batch sizes when there are any.
func logAxis(a *plot.Axis, batches []int) {
	a.Scale = plot.LogScale{}
	if len(batches) == 0 {
		a.Tick.Marker = plot.TickerFunc(logTicks)
		return
	}
	a.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ticks []plot.Tick
		for _, b := range batches {
			if v := float64(b); v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(b)})
			}
		}
		return ticks
	})
}

// logTicks labels 1, 2 and 5 times the powers of ten over ranges of up to
// two decades and only the powers over more: gonum's LogTicks labels powers
// only, which leaves a loss curve between 0.05 and 2 with a single label.
func logTicks(lo, hi float64) []plot.Tick {
	first, last := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	var ticks []plot.Tick
	labelled := 0
	for e := first; e <= last; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || math.Log10(hi/lo) <= 2 {
				t.Label = tickLabel(v)
				labelled++
			}
			ticks = append(ticks, t)
		}
	}
	if labelled < 2 { // a narrow range: label its ends
		ticks = append(ticks, plot.Tick{Value: lo, Label: tickLabel(lo)}, plot.Tick{Value: hi, Label: tickLabel(hi)})
	}
	return ticks
}

// linearTicks are gonum's, labelled without trailing zeros ("500", not "500.00").
func linearTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = tickLabel(t.Value)
		}
	}
	return ticks
}

// epochAxis ticks whole epochs, labelling at most about eight.
func epochAxis(a *plot.Axis) {
	a.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		step := 1.0
		for (hi-lo)/step > 8 {
			step *= 2
		}
		var ticks []plot.Tick
		for e := math.Ceil(lo); e <= hi; e++ {
			t := plot.Tick{Value: e}
			if math.Mod(e, step) == 0 {
				t.Label = strconv.Itoa(int(e))
			}
			ticks = append(ticks, t)
		}
		return ticks
	})
}

func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 6, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 6, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// widenLog keeps a log axis with a single value from collapsing to a point
// (gonum widens it by ±1, which can reach 0).
func widenLog(a *plot.Axis) {
	if a.Min == a.Max {
		a.Min, a.Max = a.Min/2, a.Max*2
	}
}

// line is one series: points joined by a line, ± error bars where Err is set.
type line struct {
	Label  string
	Color  color.Color
	XY     plotter.XYs
	Err    []float64 // nil: no error bars
	Dashed bool
	Marks  bool    // a dot at each point
	Radius float64 // of the dots, in points; 0: 2.5
}

func (l line) add(p *plot.Plot) error {
	if len(l.XY) == 0 {
		return nil
	}
	ln, err := plotter.NewLine(l.XY)
	if err != nil {
		return err
	}
	ln.Color, ln.Width = l.Color, vg.Points(1.6)
	if l.Dashed {
		ln.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(ln)
	thumbs := []plot.Thumbnailer{ln}
	if l.Marks {
		sc, err := plotter.NewScatter(l.XY)
		if err != nil {
			return err
		}
		sc.Shape, sc.Color, sc.Radius = draw.CircleGlyph{}, l.Color, vg.Points(cmp.Or(l.Radius, 2.5))
		p.Add(sc)
		thumbs = append(thumbs, sc)
	}
	if l.Err != nil {
		errs := make(plotter.YErrors, len(l.Err))
		for i, e := range l.Err {
			errs[i].Low, errs[i].High = e, e
		}
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{l.XY, errs})
		if err != nil {
			return err
		}
		bars.Color, bars.Width, bars.CapWidth = l.Color, vg.Points(1), vg.Points(6)
		p.Add(bars)
	}
	if l.Label != "" {
		p.Legend.Add(l.Label, thumbs...)
	}
	return nil
}

// addDiverged marks diverged runs with a × at the given x on the bottom of
// the plot: they have no final number to place, and leaving them out would
// hide them. Call it after the data, so the y range is known.
func addDiverged(p *plot.Plot, xs []float64) error {
	if len(xs) == 0 {
		return nil
	}
	xy := make(plotter.XYs, len(xs))
	for i, x := range xs {
		xy[i] = plotter.XY{X: x, Y: p.Y.Min}
	}
	sc, err := plotter.NewScatter(xy)
	if err != nil {
		return err
	}
	sc.Shape, sc.Color, sc.Radius = boldCross{}, divergedColor, vg.Points(4.5)
	p.Add(sc)
	p.Legend.Add("diverged (not in mean)", sc)
	return nil
}

// boldCross is gonum's CrossGlyph drawn thick enough to find at a glance.
type boldCross struct{}

func (boldCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	ls := draw.LineStyle{Color: sty.Color, Width: vg.Points(1.8)}
	r := sty.Radius * math.Sqrt2 / 2
	c.StrokeLine2(ls, pt.X-r, pt.Y-r, pt.X+r, pt.Y+r)
	c.StrokeLine2(ls, pt.X-r, pt.Y+r, pt.X+r, pt.Y-r)
}

// boldRing is gonum's RingGlyph drawn thick enough to read beside a dot.
type boldRing struct{}

func (boldRing) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.5)})
	var p vg.Path
	p.Move(vg.Point{X: pt.X + sty.Radius, Y: pt.Y})
	p.Arc(pt, sty.Radius, 0, 2*math.Pi)
	p.Close()
	c.Stroke(p)
}

// padLinear widens a linear axis by 6% of its span on both sides, so that
// markers at the ends of the data do not sit on the axes.
func padLinear(a *plot.Axis) {
	d := 0.06 * (a.Max - a.Min)
	a.Min, a.Max = a.Min-d, a.Max+d
}

// svg renders p as an SVG element for inlining in the page, its legend
// to the right of the axes, where it cannot hide data. gonum/plot panics on
// data it cannot draw; that becomes an error, so one bad plot cannot cost
// the whole report.
func svg(p *plot.Plot) (out template.HTML, err error) {
	defer func() {
		if e := recover(); e != nil {
			err = fmt.Errorf("drawing %q: %v", p.Title.Text, e)
		}
	}()
	c := vgsvg.New(plotWidth, plotHeight)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	legend := p.Legend
	p.Legend = plot.NewLegend() // drawn here instead
	legend.Top, legend.Left = true, true
	if w := legend.Rectangle(dc).Size().X; w > 0 {
		const gap = 8
		p.Draw(draw.Crop(dc, 0, -w-vg.Points(2*gap), 0, 0))
		title := p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
		legend.Draw(draw.Crop(dc, plotWidth-w-vg.Points(gap), 0, 0, -title-vg.Points(gap)))
	} else {
		p.Draw(dc)
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	// Drop the XML declaration and comment before <svg: they are not
	// allowed inside an HTML document. gonum escapes all text it writes.
	return template.HTML(s[strings.Index(s, "<svg"):]), nil
}

// The plots.

// trainLoss is the training loss of each step, mean over the healthy seeds,
// against epochs, in bins of up to binSteps steps. Diverged runs are drawn
// dashed up to their last finite loss, with a × there.
func (f *figures) trainLoss() (p *plot.Plot, binSteps int, err error) {
	runs := filter(f.r.Runs, FixedLR)
	p = newPlot("Training loss, fixed learning rate", "epoch", "training loss (smoothed)")
	logAxis(&p.Y, nil)
	epochAxis(&p.X)
	p.X.Min = 0
	var ceiling float64 // of the healthy curves: diverged ones may shoot far above
	var diverged []line
	for _, b := range batchesOf(runs) {
		var curves [][]float64
		var xs []float64
		for _, run := range withBatch(runs, b) {
			x, y := stepCurve(run)
			switch {
			case healthy(run):
				curves = append(curves, y)
				if len(x) > len(xs) {
					xs = x
				}
			case run.Diverged:
				n := slices.IndexFunc(y, func(v float64) bool { return !finite(v) })
				if n < 0 {
					n = len(y)
				}
				xy, _ := binned(x[:n], y[:n])
				diverged = append(diverged, line{Color: f.batchColor(b), XY: xy, Dashed: true})
			}
		}
		if len(curves) == 0 {
			continue
		}
		xy, bin := binned(xs, meanCurve(curves))
		binSteps = max(binSteps, bin)
		for _, pt := range xy {
			ceiling = max(ceiling, pt.Y)
		}
		if err := (line{Label: fmt.Sprintf("B=%d", b), Color: f.batchColor(b), XY: xy}).add(p); err != nil {
			return nil, 0, err
		}
	}
	var ends plotter.XYs
	for _, l := range diverged {
		if len(l.XY) == 0 {
			continue // diverged in its first bin: the notes say so
		}
		if err := l.add(p); err != nil {
			return nil, 0, err
		}
		ends = append(ends, l.XY[len(l.XY)-1])
	}
	if ceiling == 0 && len(ends) == 0 {
		return nil, 0, nil
	}
	if ceiling > 0 && p.Y.Max > 1.5*ceiling {
		p.Y.Max = 1.5 * ceiling // the blow-up leaves through the top
	}
	for i := range ends {
		ends[i].Y = min(ends[i].Y, p.Y.Max)
	}
	if len(ends) > 0 {
		sc, err := plotter.NewScatter(ends)
		if err != nil {
			return nil, 0, err
		}
		sc.Shape, sc.Color, sc.Radius = boldCross{}, divergedColor, vg.Points(4.5)
		p.Add(sc)
		p.Legend.Add("diverged", sc)
	}
	widenLog(&p.Y)
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

// meanCurve averages curves index by index, over those long enough.
func meanCurve(curves [][]float64) []float64 {
	var n int
	for _, c := range curves {
		n = max(n, len(c))
	}
	mean := make([]float64, n)
	for i := range mean {
		var vs []float64
		for _, c := range curves {
			if i < len(c) {
				vs = append(vs, c[i])
			}
		}
		mean[i], _ = meanOf(vs)
	}
	return mean
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
		if okx && oky && keep(mx, my, false, true) {
			xy = append(xy, plotter.XY{X: mx, Y: my})
		}
	}
	return xy, size
}

// epochMeans is a number of every epoch, mean over the healthy runs.
func epochMeans(runs []Run, of func(engine.EpochStats) float64, logY bool) plotter.XYs {
	byEpoch := map[int][]float64{}
	for _, run := range runs {
		if healthy(run) {
			for _, e := range run.Epochs {
				byEpoch[e.Epoch] = append(byEpoch[e.Epoch], of(e))
			}
		}
	}
	var xy plotter.XYs
	for _, e := range slices.Sorted(maps.Keys(byEpoch)) {
		if m, ok := meanOf(byEpoch[e]); ok && keep(float64(e), m, false, logY) {
			xy = append(xy, plotter.XY{X: float64(e), Y: m})
		}
	}
	return xy
}

func (f *figures) testLoss() (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := newPlot("Test loss, fixed learning rate", "epoch", "test loss")
	epochAxis(&p.X)
	drawn := false
	for _, b := range batchesOf(runs) {
		xy := epochMeans(withBatch(runs, b), func(e engine.EpochStats) float64 { return e.TestLoss }, false)
		drawn = drawn || len(xy) > 0
		if err := (line{Label: fmt.Sprintf("B=%d", b), Color: f.batchColor(b), XY: xy, Marks: true}).add(p); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	return p, nil
}

// byBatch is metric against batch size for one variant of an experiment,
// mean ± std over the healthy runs, and the batch size of each diverged run.
func byBatch(runs []Run, exp, variant string, metric func(Run) (float64, bool)) (xy plotter.XYs, errs, diverged []float64) {
	for _, b := range batchesOf(withVariant(runs, variant)) {
		if s := measure(runs, exp, variant, b, metric); s.ok() && keep(float64(b), s.mean, true, false) {
			xy = append(xy, plotter.XY{X: float64(b), Y: s.mean})
			errs = append(errs, s.std)
		}
		for range countDiverged(withVariant(withBatch(runs, b), variant)) {
			diverged = append(diverged, float64(b))
		}
	}
	return xy, errs, diverged
}

// accuracy is the final test accuracy against batch size for each LR rule,
// with the final noise scale B_simple marked where the study measured it.
func (f *figures) accuracy() (*plot.Plot, error) {
	p := newPlot("Test accuracy by batch size and LR rule", "batch size", "final test accuracy (%)")
	logAxis(&p.X, batchesOf(append(filter(f.r.Runs, FixedLR), filter(f.r.Runs, LRScaling)...)))
	var diverged []float64
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
			xy, errs, div := byBatch(runs, exp, v, percent(testAcc))
			diverged = append(diverged, div...)
			if err := (line{Label: label, Color: f.variantColor(v), XY: xy, Err: errs, Marks: true}).add(p); err != nil {
				return nil, err
			}
		}
	}
	if math.IsInf(p.Y.Min, 0) {
		return nil, nil
	}
	padLinear(&p.Y)
	if b, ok := finalBSimple(f.r); ok {
		if err := addVertical(p, b, fmt.Sprintf("B_simple ≈ %.0f", b)); err != nil {
			return nil, err
		}
	}
	return p, addDiverged(p, diverged)
}

// addVertical draws a dashed reference line at x across the data.
func addVertical(p *plot.Plot, x float64, label string) error {
	ln, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
	if err != nil {
		return err
	}
	ln.Color, ln.Width, ln.Dashes = refColor, vg.Points(1.2), []vg.Length{vg.Points(3), vg.Points(2)}
	p.Add(ln)
	p.Legend.Add(label, ln)
	return nil
}

// fixedByBatch is metric of the fixed-LR runs against batch size, a dot in
// each batch size's colour on a grey line.
func (f *figures) fixedByBatch(title, yLabel string, metric func(Run) (float64, bool)) (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := newPlot(title, "batch size", yLabel)
	logAxis(&p.X, batchesOf(runs))
	var all plotter.XYs
	var diverged []float64
	for _, v := range variantsOf(runs) {
		xy, errs, div := byBatch(runs, FixedLR, v, metric)
		diverged = append(diverged, div...)
		for i, pt := range xy {
			if err := (line{Color: f.batchColor(int(pt.X)), XY: xy[i : i+1], Err: errs[i : i+1], Marks: true}).add(p); err != nil {
				return nil, err
			}
		}
		all = append(all, xy...)
	}
	if len(all) == 0 {
		return nil, nil
	}
	ln, err := plotter.NewLine(all)
	if err != nil {
		return nil, err
	}
	ln.Color, ln.Width = refColor, vg.Points(1)
	p.Add(ln)
	padLinear(&p.Y)
	return p, addDiverged(p, diverged)
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
		if m, ok := meanOf(vs); ok && keep(float64(b), m, true, true) {
			xy = append(xy, plotter.XY{X: float64(b), Y: m})
		}
	}
	return xy
}

// cost is one log-log plot of per-epoch costs of the fixed-LR sweep, a line
// for each of series drawn from the matching function of of.
func (f *figures) cost(title, yLabel string, series []line, of []func(engine.EpochStats) float64) (*plot.Plot, error) {
	runs := filter(f.r.Runs, FixedLR)
	p := newPlot(title, "batch size", yLabel)
	logAxis(&p.X, batchesOf(runs))
	logAxis(&p.Y, nil)
	drawn := false
	for i, l := range series {
		l.XY, l.Marks = epochCost(runs, of[i]), true
		drawn = drawn || len(l.XY) > 0
		if err := l.add(p); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	widenLog(&p.Y)
	return p, nil
}

func (f *figures) counts() (*plot.Plot, error) {
	return f.cost("Updates and host→device copies per epoch", "count per epoch",
		[]line{
			{Label: "parameter updates", Color: variantPalette[1]},
			{Label: "host→device copies", Color: variantPalette[2], Dashed: true},
		},
		[]func(engine.EpochStats) float64{
			func(e engine.EpochStats) float64 { return float64(e.Updates) },
			func(e engine.EpochStats) float64 { return float64(e.H2DCopies) },
		})
}

func (f *figures) seconds() (*plot.Plot, error) {
	return f.cost("Time per epoch", "seconds per epoch",
		[]line{
			{Label: "whole training pass", Color: variantPalette[0]},
			{Label: "forward + backward", Color: variantPalette[1], Dashed: true},
			{Label: "optimizer update", Color: variantPalette[3], Dashed: true},
			{Label: "load + host→device", Color: variantPalette[2], Dashed: true},
		},
		[]func(engine.EpochStats) float64{
			func(e engine.EpochStats) float64 { return e.Seconds },
			func(e engine.EpochStats) float64 { return e.ComputeSeconds },
			func(e engine.EpochStats) float64 { return e.UpdateSeconds },
			func(e engine.EpochStats) float64 { return e.TransferSeconds },
		})
}

// byEpoch draws a number of every epoch, one line per variant of an
// experiment; a log batch-size axis when batchAxis is set.
func (f *figures) byEpoch(exp, title, yLabel string, of func(engine.EpochStats) float64, batchAxis bool) (*plot.Plot, error) {
	runs := filter(f.r.Runs, exp)
	p := newPlot(title, "epoch", yLabel)
	epochAxis(&p.X)
	if batchAxis {
		var bs []int
		for _, run := range runs {
			for _, e := range run.Epochs {
				bs = append(bs, e.Batch)
			}
		}
		slices.Sort(bs)
		logAxis(&p.Y, slices.Compact(bs))
	}
	drawn := false
	for _, v := range variantsOf(runs) {
		xy := epochMeans(withVariant(runs, v), of, batchAxis)
		drawn = drawn || len(xy) > 0
		if err := (line{Label: v, Color: f.variantColor(v), XY: xy, Marks: true}).add(p); err != nil {
			return nil, err
		}
	}
	if !drawn {
		return nil, nil
	}
	if batchAxis {
		widenLog(&p.Y)
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
	p := newPlot("Parameter updates of the whole run", "", "total updates")
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
		lb.TextStyle[i] = text.Style{Font: sans(9, false), XAlign: draw.XCenter, Handler: p.TextHandler}
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
	p := newPlot("Final accuracy by variant", "", "accuracy (%)")
	var names []string
	var diverged []float64
	var train plotter.XYs
	for _, v := range variantsOf(runs) {
		s := measure(runs, Regime, v, 0, percent(testAcc))
		div := countDiverged(withVariant(runs, v))
		if !s.ok() && div == 0 {
			continue // failed runs only: the section's notes list them
		}
		x := float64(len(names))
		names = append(names, v)
		for range div {
			diverged = append(diverged, x)
		}
		if !s.ok() {
			continue
		}
		l := line{Color: f.variantColor(v), XY: plotter.XYs{{X: x, Y: s.mean}}, Err: []float64{s.std}, Marks: true, Radius: 3.5}
		if err := l.add(p); err != nil {
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
	dot.Shape, dot.Color, dot.Radius = draw.CircleGlyph{}, refColor, vg.Points(3.5)
	p.Legend.Add("test", dot) // a legend entry only, not drawn
	if len(train) > 0 {
		sc, err := plotter.NewScatter(train)
		if err != nil {
			return nil, err
		}
		sc.Shape, sc.Color, sc.Radius = boldRing{}, refColor, vg.Points(5)
		p.Add(sc)
		p.Legend.Add("train", sc)
	}
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.NominalX(names...)
	padLinear(&p.Y)
	return p, addDiverged(p, diverged)
}

// noise is B_simple against updates for each noise run, with the batch
// sizes of the sweep as reference lines; hidden counts the estimates that
// cannot be drawn (not yet finite and positive).
func (f *figures) noise() (p *plot.Plot, hidden int, err error) {
	runs := filter(f.r.Runs, Noise)
	p = newPlot("Gradient noise scale during training", "parameter updates", "B_simple = tr(Σ) / |G|²")
	logAxis(&p.Y, nil)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, run := range runs {
		var xy plotter.XYs
		for _, pt := range run.Noise {
			if !keep(float64(pt.Updates), pt.BSimple, false, true) {
				hidden++
				continue
			}
			xy = append(xy, plotter.XY{X: float64(pt.Updates), Y: pt.BSimple})
			lo, hi = min(lo, float64(pt.Updates)), max(hi, float64(pt.Updates))
		}
		l := line{Label: fmt.Sprintf("B=%d, seed %d", run.Batch, run.Seed), Color: variantPalette[(i+1)%len(variantPalette)], XY: xy, Marks: true}
		if err := l.add(p); err != nil {
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
			lb.TextStyle[i] = text.Style{Font: sans(8, false), Color: refColor, YAlign: draw.YBottom, Handler: p.TextHandler}
		}
		lb.Offset = vg.Point{X: vg.Points(2), Y: vg.Points(1)}
		p.Add(lb)
	}
	widenLog(&p.Y)
	return p, hidden, nil
}
