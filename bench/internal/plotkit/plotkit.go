// Package plotkit is the one plotting kit of the bench suite: the house
// style (fonts, colours, grid), axes (log ticks that label short ranges,
// batch-size and epoch axes), lines with error bars and markers, reference
// lines, and output as inline SVG for the study's page or as SVG, PNG or
// PDF files. The transfer and epoch plots, the study and the advisor all
// draw with it, so that a plot looks and reads the same wherever it is.
//
// gonum/plot panics on NaN and ±Inf and on values ≤ 0 on a log axis:
// callers filter their points with Keep, and rendering turns a panic that
// still happens into an error.
package plotkit

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"strconv"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Every plot is 16×10 cm.
const (
	width  = 16 * vg.Centimeter
	height = 10 * vg.Centimeter
)

// Okabe–Ito and Tableau colours: distinguishable, also for most colour-blind
// readers. Batch sizes take the first list in ascending order, series the
// second in order of appearance, so a colour means the same thing in every
// plot.
var (
	batchPalette  = rgb(0x4e79a7, 0xf28e2b, 0x59a14f, 0xe15759, 0xb07aa1, 0x9c755f, 0x76b7b2, 0xff9da7)
	seriesPalette = rgb(0x555555, 0x0072b2, 0xd55e00, 0x009e73, 0xcc79a7, 0xe69f00, 0x56b4e9, 0x8c564b, 0x7b3294, 0xa6961c)
	gridColor     = rgb(0xe4e4e4)[0]
	refColor      = rgb(0x999999)[0]
	markColor     = rgb(0x222222)[0]
)

func rgb(hex ...uint32) []color.Color {
	cs := make([]color.Color, len(hex))
	for i, v := range hex {
		cs[i] = color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
	}
	return cs
}

// BatchColor is the colour of the i-th batch size of a plot, ascending.
func BatchColor(i int) color.Color { return batchPalette[max(i, 0)%len(batchPalette)] }

// SeriesColor is the colour of the i-th series (variant, strategy, part).
func SeriesColor(i int) color.Color { return seriesPalette[max(i, 0)%len(seriesPalette)] }

// Reference is the grey of axes, reference lines and legend-only entries.
func Reference() color.Color { return refColor }

// Mark is the near-black of marks that must stand out (diverged runs).
func Mark() color.Color { return markColor }

// Font is the house face, Liberation Sans (Arial's metrics), at size points.
func Font(size float64, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Points(size)}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return f
}

// New starts a plot in the house style: title, axis labels, light grid,
// linear ticks without trailing zeros.
func New(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = Font(12, true)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = Font(10, false)
		a.Tick.Label.Font = Font(9, false)
		a.Color = refColor
		a.Tick.Color = refColor
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.TickerFunc(linearTicks), plot.TickerFunc(linearTicks)
	p.Legend.TextStyle.Font = Font(9, false)
	p.Legend.Padding = vg.Points(3)
	p.Legend.ThumbnailWidth = vg.Points(16)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = gridColor, gridColor
	p.Add(g)
	return p
}

// Finite reports whether x is neither NaN nor ±Inf.
func Finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Keep reports whether a point can be drawn on axes that are logarithmic
// where logX or logY is set.
func Keep(x, y float64, logX, logY bool) bool {
	return Finite(x) && Finite(y) && (!logX || x > 0) && (!logY || y > 0)
}

// LogAxis makes a a log axis with 1-2-5 ticks (logTicks).
func LogAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.TickerFunc(logTicks)
}

// BatchAxis makes a a log axis ticked at the given batch sizes, each
// labelled, or every other one when there are more than ten.
func BatchAxis(a *plot.Axis, batches []int) {
	if len(batches) == 0 {
		LogAxis(a)
		return
	}
	a.Scale = plot.LogScale{}
	every := 1
	if len(batches) > 10 {
		every = 2
	}
	a.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ticks []plot.Tick
		for i, b := range batches {
			if v := float64(b); v >= lo && v <= hi {
				t := plot.Tick{Value: v}
				if i%every == 0 {
					t.Label = strconv.Itoa(b)
				}
				ticks = append(ticks, t)
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

// linearTicks are gonum's, labelled to the precision their spacing needs
// and no more ("0.3", not "0.30000000000000004" or "0.30"), in one unit
// (k, M) for the whole axis.
func linearTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	var vals []float64
	for _, t := range ticks {
		if t.Label != "" {
			vals = append(vals, t.Value)
		}
	}
	format := tickFormat(vals)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = format(t.Value)
		}
	}
	return ticks
}

// EpochAxis ticks whole epochs, labelling at most about eight.
func EpochAxis(a *plot.Axis) {
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

// tickLabel labels one tick on its own (a log axis's 1-2-5 ticks).
func tickLabel(v float64) string { return tickFormat([]float64{v})(v) }

// tickFormat is the format of the labels vals on one axis: in thousands
// (k) or millions (M) from 10⁴ and 10⁶ on, with the fewest decimals that
// write every value exactly, to about nine significant digits (0 as "0"). Float
// arithmetic leaves ticks like 0.1+0.2 = 0.30000000000000004, which that
// rounds away, and ticks closer than six significant digits keep the
// digits that tell them apart.
func tickFormat(vals []float64) func(float64) string {
	big := 0.0
	for _, v := range vals {
		big = max(big, math.Abs(v))
	}
	unit, suffix := 1.0, ""
	switch {
	case big >= 1e6:
		unit, suffix = 1e6, "M"
	case big >= 1e4:
		unit, suffix = 1e3, "k"
	}
	decimals := 0
	for ; decimals < 15; decimals++ {
		scale, exact := math.Pow(10, float64(decimals)), true
		for _, v := range vals {
			x := v / unit * scale
			exact = exact && math.Abs(x-math.Round(x)) <= 1e-9*max(1, math.Abs(x))
		}
		if exact {
			break
		}
	}
	return func(v float64) string {
		if math.Abs(v) <= 1e-12*big { // zero, or float arithmetic's near-zero: no unit, no decimals
			return "0"
		}
		return strconv.FormatFloat(v/unit, 'f', decimals, 64) + suffix
	}
}

// WidenLog keeps a log axis with a single value from collapsing to a point
// (gonum widens it by ±1, which can reach 0).
func WidenLog(a *plot.Axis) {
	if a.Min == a.Max {
		a.Min, a.Max = a.Min/2, a.Max*2
	}
}

// PadLinear widens a linear axis by 6% of its span on both sides, so that
// markers at the ends of the data do not sit on the axes.
func PadLinear(a *plot.Axis) {
	d := 0.06 * (a.Max - a.Min)
	a.Min, a.Max = a.Min-d, a.Max+d
}

// dashes is the pattern of dashed lines.
func dashes() []vg.Length { return []vg.Length{vg.Points(4), vg.Points(3)} }

// Line is one series: points joined by a line, ± error bars where Err is
// set, or bars from Lo to Hi (a spread: min–max, IQR) where those are.
type Line struct {
	Label  string // "": not in the legend
	Color  color.Color
	XY     plotter.XYs
	Err    []float64 // nil: no error bars
	Lo, Hi []float64 // each point's spread, in y; nil: none
	Dashed bool
	NoLine bool    // the points' marks and bars only, not joined
	Marks  bool    // a dot at each point
	Radius float64 // of the dots, in points; 0: 2.5
	Width  float64 // of the line, in points; 0: 1.6
}

// Add draws l on p; a line without points draws nothing.
func (l Line) Add(p *plot.Plot) error {
	if len(l.XY) == 0 {
		return nil
	}
	ln, err := plotter.NewLine(l.XY)
	if err != nil {
		return err
	}
	ln.Color, ln.Width = l.Color, vg.Points(cmp.Or(l.Width, 1.6))
	if l.Dashed {
		ln.Dashes = dashes()
	}
	if !l.NoLine {
		p.Add(ln)
	}
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
	var errs plotter.YErrors
	switch {
	case l.Err != nil:
		errs = make(plotter.YErrors, len(l.Err))
		for i, e := range l.Err {
			errs[i].Low, errs[i].High = e, e
		}
	case l.Lo != nil:
		if len(l.Lo) != len(l.XY) || len(l.Hi) != len(l.XY) {
			return fmt.Errorf("line %q: %d points, %d and %d spread ends", l.Label, len(l.XY), len(l.Lo), len(l.Hi))
		}
		errs = make(plotter.YErrors, len(l.Lo))
		for i := range l.Lo {
			errs[i].Low, errs[i].High = max(l.XY[i].Y-l.Lo[i], 0), max(l.Hi[i]-l.XY[i].Y, 0)
		}
	}
	if errs != nil {
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

// Vertical draws a dashed reference line at x across p's y range (set it
// first), in the legend as label.
func Vertical(p *plot.Plot, x float64, label string, c color.Color) error {
	ln, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
	if err != nil {
		return err
	}
	ln.Color, ln.Width, ln.Dashes = c, vg.Points(1.2), []vg.Length{vg.Points(3), vg.Points(2)}
	p.Add(ln)
	p.Legend.Add(label, ln)
	return nil
}

// BoldCross is gonum's CrossGlyph drawn thick enough to find at a glance.
type BoldCross struct{}

func (BoldCross) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	ls := draw.LineStyle{Color: sty.Color, Width: vg.Points(1.8)}
	r := sty.Radius * math.Sqrt2 / 2
	c.StrokeLine2(ls, pt.X-r, pt.Y-r, pt.X+r, pt.Y+r)
	c.StrokeLine2(ls, pt.X-r, pt.Y+r, pt.X+r, pt.Y-r)
}

// BoldRing is gonum's RingGlyph drawn thick enough to read beside a dot.
type BoldRing struct{}

func (BoldRing) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.5)})
	var p vg.Path
	p.Move(vg.Point{X: pt.X + sty.Radius, Y: pt.Y})
	p.Arc(pt, sty.Radius, 0, 2*math.Pi)
	p.Close()
	c.Stroke(p)
}
