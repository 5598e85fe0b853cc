package advise

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot draws samples/s against batch size (log₂ axis) with the throughput
// knee, the noise scale, the memory limit and the recommendation marked,
// and saves it; the format follows the file's extension (.svg, .png, .pdf).
func Plot(path string, a *Advice) error {
	p := plot.New()
	p.Title.Text = "Throughput and the noise scale by batch size"
	p.X.Label.Text = "batch size"
	p.Y.Label.Text = "samples/s"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	pts := make(plotter.XYs, len(a.Throughput))
	for i, t := range a.Throughput {
		pts[i] = plotter.XY{X: float64(t.Batch), Y: t.SamplesPerSec}
	}
	if len(pts) == 0 {
		return fmt.Errorf("advise: nothing to plot")
	}
	line, points, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	points.Shape = draw.CircleGlyph{}
	p.Add(line, points)
	p.Legend.Add("samples/s", line, points)
	p.Legend.Top = true
	p.Y.Min = 0
	top := a.Peak.SamplesPerSec * 1.1
	p.Y.Max = top
	marks := []struct {
		name string
		x    float64
		c    color.Color
	}{
		{fmt.Sprintf("knee B=%d", a.Knee), float64(a.Knee), color.RGBA{R: 230, G: 120, A: 255}},
		{fmt.Sprintf("noise scale B_simple=%.0f", a.BSimple), a.BSimple, color.RGBA{R: 40, G: 120, B: 220, A: 255}},
		{fmt.Sprintf("recommended B=%d", a.Batch), float64(a.Batch), color.RGBA{G: 150, B: 60, A: 255}},
	}
	lo, hi := pts[0].X, pts[len(pts)-1].X
	for _, m := range marks {
		if !(m.x > 0) || math.IsInf(m.x, 0) {
			continue
		}
		lo, hi = math.Min(lo, m.x), math.Max(hi, m.x)
		v, err := plotter.NewLine(plotter.XYs{{X: m.x, Y: 0}, {X: m.x, Y: top}})
		if err != nil {
			return err
		}
		v.Color, v.Dashes = m.c, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(v)
		p.Legend.Add(m.name, v)
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}
