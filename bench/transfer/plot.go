package transfer

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench"
	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine/data"
)

// Plot writes the sweep's four plots into dir, each as SVG and PNG:
// time per batch with the fit (dashed), time per sample, achieved
// bandwidth, and transfer time per epoch. It returns the files written.
func (r *Report) Plot(dir string) ([]string, error) {
	names, batches := r.strategies(), r.batches()
	// series draws each strategy's medians with their range as error bars;
	// y is the plotted figure of a point that took secs per batch.
	series := func(y func(p Point, secs float64) float64, skip data.Mode) []plotkit.Line {
		var ls []plotkit.Line
		for i, n := range names {
			l := plotkit.Line{Label: n, Color: plotkit.SeriesColor(i + 1), Marks: true}
			for _, b := range batches {
				pt, ok := r.point(n, b)
				if !ok || pt.Mode == string(skip) || !plotkit.Keep(float64(b), y(pt, pt.Seconds), true, true) {
					continue
				}
				lo, hi := y(pt, pt.MinSeconds), y(pt, pt.MaxSeconds)
				l.XY = append(l.XY, plotter.XY{X: float64(b), Y: y(pt, pt.Seconds)})
				l.Lo, l.Hi = append(l.Lo, min(lo, hi)), append(l.Hi, max(lo, hi))
			}
			ls = append(ls, l)
		}
		return ls
	}
	// The fit drawn at 64 batch sizes spaced evenly on the log axis, dashed
	// in its strategy's colour; points where a negative α makes it
	// non-positive are left out.
	var fits []plotkit.Line
	lo, hi := float64(batches[0]), float64(batches[len(batches)-1])
	for i, n := range names {
		f, ok := r.Fit(n)
		pt, _ := r.point(n, batches[0])
		l := plotkit.Line{Color: plotkit.SeriesColor(i + 1), Dashed: true, Width: 0.8}
		for j := range 64 {
			if !ok || hi == lo {
				break
			}
			b := lo * math.Pow(hi/lo, float64(j)/63)
			if t := f.Alpha + b*float64(pt.Bytes)/float64(pt.Batch)/f.Beta; t > 0 {
				l.XY = append(l.XY, plotter.XY{X: b, Y: t * 1e6})
			}
		}
		fits = append(fits, l)
	}
	label := bench.PlotLabel(r.Device)
	plots := []struct {
		name, title, ylabel string
		lines               []plotkit.Line
	}{
		{"transfer-batch-time", "host→device time per batch (median, bars: min–max of the repeats; dashed: fit α + bytes/β)", "µs per batch",
			append(series(func(p Point, secs float64) float64 { return secs * 1e6 }, ""), fits...)},
		{"transfer-per-sample", "host→device time per sample (median, bars: min–max of the repeats)", "ns per sample",
			series(func(p Point, secs float64) float64 { return secs * 1e9 / float64(p.Batch) }, "")},
		// resident moves B int32 indices per batch (its samples were
		// uploaded once): its "bandwidth" would be an index rate at the
		// bottom of the axis, read as a slow copy. It is left out, and
		// the title says so.
		{"transfer-gbps", "achieved host→device bandwidth, bytes moved / time (resident left out: it moves only B int32 indices per batch)", "GB/s",
			series(func(p Point, secs float64) float64 { return float64(p.Bytes) / secs / 1e9 }, data.Resident)},
		{"transfer-epoch", fmt.Sprintf("transfer time per epoch of %d samples (median, bars: min–max)", r.Samples), "seconds per epoch",
			series(func(p Point, secs float64) float64 { return float64(p.EpochBatches) * secs }, "")},
	}
	var files []string
	for _, pl := range plots {
		p := plotkit.New(pl.title+"\n"+label+", "+r.Date, "batch size (samples)", pl.ylabel)
		plotkit.BatchAxis(&p.X, batches)
		plotkit.LogAxis(&p.Y)
		for _, l := range pl.lines {
			if err := l.Add(p); err != nil {
				return files, fmt.Errorf("plot %s: %w", pl.name, err)
			}
		}
		plotkit.WidenLog(&p.Y)
		written, err := plotkit.SaveSVGAndPNG(p, dir, pl.name)
		files = append(files, written...)
		if err != nil {
			return files, err
		}
	}
	return files, nil
}
