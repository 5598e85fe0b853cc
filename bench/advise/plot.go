package advise

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plot draws samples/s against batch size (log₂ axis), medians with the
// repeats' range as bars, with the throughput knee, the noise scale and the
// recommendation marked, and saves it atomically; the format follows the
// file's extension (.svg, .png, .pdf).
func Plot(path string, a *Advice) error {
	p := plotkit.New("Throughput and the noise scale by batch size", "batch size", "samples/s (median, bars: min–max)")
	var batches []int
	l := plotkit.Line{Label: "samples/s", Color: plotkit.SeriesColor(1), Marks: true}
	top := 0.0
	for _, t := range a.Throughput {
		if plotkit.Keep(float64(t.Batch), t.SamplesPerSec, true, false) {
			l.XY = append(l.XY, plotter.XY{X: float64(t.Batch), Y: t.SamplesPerSec})
			l.Lo, l.Hi = append(l.Lo, t.SamplesPerSecMin), append(l.Hi, t.SamplesPerSecMax)
			batches = append(batches, t.Batch)
			top = max(top, t.SamplesPerSecMax)
		}
	}
	if len(l.XY) == 0 {
		return errors.New("advise: nothing to plot")
	}
	plotkit.BatchAxis(&p.X, batches)
	if err := l.Add(p); err != nil {
		return err
	}
	p.Y.Min, p.Y.Max = 0, top*1.1
	lo, hi := l.XY[0].X, l.XY[len(l.XY)-1].X
	for i, m := range marks(a) {
		lo, hi = math.Min(lo, m.x), math.Max(hi, m.x)
		if err := plotkit.Vertical(p, m.x, m.label, plotkit.SeriesColor(i+2)); err != nil {
			return err
		}
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	return plotkit.Save(p, path)
}

// mark is a vertical line of the plot.
type mark struct {
	label string
	x     float64
}

// marks are the knee, the noise scale and the recommendation, those that
// can be drawn; marks at the same batch are one line with both labels, so
// that one never hides the other (the knee is often the recommendation).
func marks(a *Advice) []mark {
	knee := fmt.Sprintf("knee B=%d", a.Knee)
	if a.KneeMin != a.KneeMax {
		knee += fmt.Sprintf(" (repeats %d–%d)", a.KneeMin, a.KneeMax)
	}
	var ms []mark
	for _, m := range []mark{
		{knee, float64(a.Knee)},
		{fmt.Sprintf("B_simple=%.0f [%.0f–%.0f]", a.BSimple, a.BSimpleMin, a.BSimpleMax), a.BSimple},
		{fmt.Sprintf("recommended B=%d", a.Batch), float64(a.Batch)},
	} {
		if !(m.x > 0) || math.IsInf(m.x, 0) {
			continue
		}
		merged := false
		for i := range ms {
			if math.Abs(math.Log2(ms[i].x/m.x)) < 0.05 { // closer than the lines' width on the log₂ axis
				ms[i].label = strings.Join([]string{ms[i].label, m.label}, " = ")
				merged = true
			}
		}
		if !merged {
			ms = append(ms, m)
		}
	}
	return ms
}
