// Package runplot draws runs read back from their run logs (engine/runlog)
// side by side, for `batchlab compare --out`: test accuracy and loss
// against epoch, one colour per run. It lives under bench/ to draw with
// the house plotting kit, which Go's internal rule keeps to bench/.
package runplot

import (
	"fmt"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/runlog"
)

// Plot writes compare-accuracy and compare-loss (.svg and .png) into dir,
// one line per run, labelled with labels[i], and returns the files written.
// Epochs whose value is not finite (a diverged run) are left out.
func Plot(runs []*runlog.Run, labels []string, dir string) ([]string, error) {
	if len(runs) != len(labels) {
		return nil, fmt.Errorf("runplot: %d runs and %d labels", len(runs), len(labels))
	}
	var files []string
	for _, fig := range []struct {
		name, title, y string
		of             func(engine.EpochStats) float64
	}{
		{"compare-accuracy", "Test accuracy by epoch", "test accuracy (%)", func(e engine.EpochStats) float64 { return 100 * e.TestAccuracy }},
		{"compare-loss", "Test loss by epoch", "test loss", func(e engine.EpochStats) float64 { return e.TestLoss }},
	} {
		p := plotkit.New(fig.title, "epoch", fig.y)
		plotkit.EpochAxis(&p.X)
		for i, r := range runs {
			var xy plotter.XYs
			for _, e := range r.Epochs {
				if y := fig.of(e); plotkit.Finite(y) {
					xy = append(xy, plotter.XY{X: float64(e.Epoch), Y: y})
				}
			}
			line := plotkit.Line{Label: labels[i], Color: plotkit.SeriesColor(i), XY: xy, Marks: true}
			if err := line.Add(p); err != nil {
				return files, fmt.Errorf("%s: %w", fig.name, err)
			}
		}
		plotkit.PadLinear(&p.Y)
		written, err := plotkit.SaveSVGAndPNG(p, dir, fig.name)
		files = append(files, written...)
		if err != nil {
			return files, err
		}
	}
	return files, nil
}
