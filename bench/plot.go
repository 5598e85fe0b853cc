package bench

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plots are 8×5.5 inches: 768×528 pixels as PNG.
const plotW, plotH = 8 * vg.Inch, 5.5 * vg.Inch

// curve is one strategy's line on a plot.
type curve struct {
	name string
	xy   plotter.XYs
}

// newPlot starts a plot of batch size (log scale) against y.
func newPlot(title, ylabel string, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "batch size (samples)"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = powersOfTwoTicks{}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	p.Add(plotter.NewGrid())
	return p
}

// powersOfTwoTicks labels 1, 4, 16, … on a log axis of batch sizes.
type powersOfTwoTicks struct{}

func (powersOfTwoTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for i, b := 0, 1.0; b <= max; i, b = i+1, b*2 {
		if b < min {
			continue
		}
		t := plot.Tick{Value: b}
		if i%2 == 0 {
			t.Label = strconv.Itoa(int(b))
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// logTicks marks 1, 2, 3 and 5 times the powers of ten, labelling all of
// them on an axis of less than two decades and the powers of ten on a
// longer one (gonum's LogTicks labels only powers of ten, too few on a
// short axis).
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	short := max/min < 100
	var ticks []plot.Tick
	labelled := 0
	for e := math.Floor(math.Log10(min)); math.Pow(10, e) <= max; e++ {
		for _, m := range []float64{1, 2, 3, 5} {
			v := m * math.Pow(10, e)
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || short {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
				labelled++
			}
			ticks = append(ticks, t)
		}
	}
	if labelled < 2 { // less than a factor of 2 to 5 wide: linear ticks read better
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	return ticks
}

// addCurves draws each curve in its own color and marker; dashed curves
// (the fits) follow the colors of the solid ones.
func addCurves(p *plot.Plot, solid, dashed []curve) error {
	for i, c := range solid {
		l, pts, err := plotter.NewLinePoints(c.xy)
		if err != nil {
			return fmt.Errorf("plot %q, %s: %w", p.Title.Text, c.name, err)
		}
		l.Color, pts.Color, pts.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, pts)
		p.Legend.Add(c.name, l, pts)
	}
	for i, c := range dashed {
		l, err := plotter.NewLine(c.xy)
		if err != nil {
			return fmt.Errorf("plot %q, %s: %w", p.Title.Text, c.name, err)
		}
		l.Color, l.Dashes = plotutil.Color(i), []vg.Length{vg.Points(4), vg.Points(3)}
		l.Width = vg.Points(0.8)
		p.Add(l)
	}
	return nil
}

// makeRoomForLegend raises the top of a log-scale y axis so that the
// legend, at the top, sits above the curves instead of on them.
func makeRoomForLegend(p *plot.Plot, cs []curve) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		for _, pt := range c.xy {
			lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
		}
	}
	if lo > 0 && hi >= lo {
		// The legend's rows take about a quarter of the axis's height;
		// a little room below keeps the lowest marker whole.
		span := max(hi/lo, 10)
		p.Y.Min, p.Y.Max = lo/math.Pow(span, 0.03), hi*math.Pow(span, 0.35)
	}
}

// save writes p as name.svg and name.png in dir.
func save(p *plot.Plot, dir, name string) ([]string, error) {
	var files []string
	for _, ext := range []string{".svg", ".png"} {
		f := filepath.Join(dir, name+ext)
		if err := p.Save(plotW, plotH, f); err != nil {
			return files, fmt.Errorf("saving %s: %w", f, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// Plot writes the sweep's four plots into dir, each as SVG and PNG:
// time per batch with the fit (dashed), time per sample, achieved
// bandwidth, and transfer time per epoch. It returns the files written.
func (r *TransferReport) Plot(dir string) ([]string, error) {
	names, batches := r.strategies(), r.batches()
	series := func(y func(Point) float64) []curve {
		var cs []curve
		for _, n := range names {
			c := curve{name: n}
			for _, b := range batches {
				if pt, ok := r.point(n, b); ok {
					c.xy = append(c.xy, plotter.XY{X: float64(b), Y: y(pt)})
				}
			}
			cs = append(cs, c)
		}
		return cs
	}
	// The fit drawn at 64 batch sizes spaced evenly on the log axis;
	// points where a negative α makes it non-positive are left out.
	var fits []curve
	lo, hi := float64(batches[0]), float64(batches[len(batches)-1])
	for _, n := range names {
		f, ok := r.Fit(n)
		pt, _ := r.point(n, batches[0])
		c := curve{name: n}
		for i := range 64 {
			if !ok || hi == lo {
				break
			}
			b := lo * math.Pow(hi/lo, float64(i)/63)
			if t := f.Alpha + b*float64(pt.Bytes)/float64(pt.Batch)/f.Beta; t > 0 {
				c.xy = append(c.xy, plotter.XY{X: b, Y: t * 1e6})
			}
		}
		fits = append(fits, c)
	}
	label := plotLabel(r.Device)
	plots := []struct {
		name, title, ylabel string
		solid, dashed       []curve
		legendLeft          bool
	}{
		{"transfer-batch-time", "host→device time per batch (dashed: fit α + bytes/β)", "µs per batch",
			series(func(p Point) float64 { return p.Seconds * 1e6 }), fits, true},
		{"transfer-per-sample", "host→device time per sample", "ns per sample",
			series(func(p Point) float64 { return p.NsPerSample }), nil, false},
		{"transfer-gbps", "achieved host→device bandwidth (bytes moved / time)", "GB/s",
			series(func(p Point) float64 { return p.GBPerSec }), nil, true},
		{"transfer-epoch", fmt.Sprintf("transfer time per epoch of %d samples", r.Samples), "seconds per epoch",
			series(func(p Point) float64 { return p.EpochSeconds }), nil, false},
	}
	var files []string
	for _, pl := range plots {
		p := newPlot(pl.title+"\n"+label+", "+r.Date, pl.ylabel, true)
		if err := addCurves(p, pl.solid, pl.dashed); err != nil {
			return files, err
		}
		p.Legend.Top, p.Legend.Left = true, pl.legendLeft
		makeRoomForLegend(p, append(pl.solid, pl.dashed...))
		written, err := save(p, dir, pl.name)
		files = append(files, written...)
		if err != nil {
			return files, err
		}
	}
	return files, nil
}

// Plot writes the epoch split as stacked bars per batch size into dir,
// as epoch-split.svg and .png, and returns the files written.
func (r *EpochReport) Plot(dir string) ([]string, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("one epoch of %s (%d samples), %s transfer\n%s, %s",
		r.Dataset, r.Samples, r.Transfer, plotLabel(r.Device), r.Date)
	p.X.Label.Text = "batch size (samples)"
	p.Y.Label.Text = "seconds per epoch"
	p.Add(plotter.NewGrid())
	parts := []struct {
		name string
		of   func(EpochPoint) float64
	}{
		{"transfer", func(e EpochPoint) float64 { return e.TransferSeconds }},
		{"forward+backward", func(e EpochPoint) float64 { return e.ComputeSeconds }},
		{"update", func(e EpochPoint) float64 { return e.UpdateSeconds }},
		{"other (host, sync)", func(e EpochPoint) float64 { return e.OtherSeconds }},
	}
	var below *plotter.BarChart
	for i, part := range parts {
		vals := make(plotter.Values, len(r.Points))
		for j, e := range r.Points {
			vals[j] = max(part.of(e), 0)
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(40))
		if err != nil {
			return nil, fmt.Errorf("epoch plot: %w", err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(part.name, bars)
	}
	labels := make([]string, len(r.Points))
	top := 0.0
	for j, e := range r.Points {
		labels[j] = fmt.Sprintf("%d\n%d updates\ntransfer %.1f%%", e.Batch, e.Updates, 100*e.TransferSeconds/e.Seconds)
		top = max(top, e.Seconds)
	}
	p.NominalX(labels...)
	p.Legend.Top = true
	p.Y.Min, p.Y.Max = 0, 1.3*top // room for the legend above the bars
	return save(p, dir, "epoch-split")
}
