package advise

import (
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/grid"
)

// TestFromGrid: a synthetic grid whose steps follow S(B) = S_min(1 +
// B_crit/B) at its best LR, with B_crit 100 at loss 0.5 and 1000 at 0.2,
// gives the batch nearest 1000 and the best LR measured there.
func TestFromGrid(t *testing.T) {
	p := grid.Plan{Batches: []int{32, 64, 128, 256, 512, 1024, 2048, 4096}, Seeds: []uint64{1, 2}, LRs: []float64{0.05, 0.1, 0.2},
		Targets: []float64{0.5, 0.2}, MaxEpochs: 10, SmoothSamples: 256, Hidden: []int{16}, Momentum: 0.9}
	bCrit := []float64{100, 1000}
	var runs []grid.Run
	for _, b := range p.Batches {
		bestLR := 0.1
		if b >= 512 {
			bestLR = 0.2
		}
		for _, lr := range p.LRs {
			for _, seed := range p.Seeds {
				r := grid.Run{Kind: grid.Train, Batch: b, LR: lr, Seed: seed, TrainLen: 1 << 20}
				for ti, target := range p.Targets {
					s := int(math.Round(40 * (1 + bCrit[ti]/float64(b)) * (1 + 0.01*float64(seed))))
					if lr != bestLR {
						s = s * 3 / 2
					}
					samples := s * b
					r.Hits = append(r.Hits, grid.Hit{Target: target, Reached: true, Steps: &s, Samples: &samples})
				}
				runs = append(runs, r)
			}
		}
	}
	dir := t.TempDir()
	if err := grid.WriteRuns(dir, p, runs); err != nil {
		t.Fatal(err)
	}
	g, err := FromGrid(dir)
	if err != nil {
		t.Fatal(err)
	}
	if g.Target != 0.2 || math.Abs(g.BCrit/1000-1) > 0.05 || g.Batch != 1024 || g.LR != 0.2 || g.LREdge != true {
		t.Errorf("advice %+v: want target 0.2, B_crit ≈ 1000, batch 1024 at lr 0.2 (the grid's edge)", g)
	}
	for _, want := range []string{"Measured, not estimated", "(sgd)", "B=1024", "edge of the grid"} {
		if !strings.Contains(g.Reasoning, want) {
			t.Errorf("reasoning lacks %q: %s", want, g.Reasoning)
		}
	}
	if _, err := FromGrid(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a grid directory") {
		t.Errorf("an empty directory: %v", err)
	}
}
