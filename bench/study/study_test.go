package study

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
)

// tinyPreset is the study shrunk to seconds: the MNIST subset, one seed.
func tinyPreset() Preset {
	p := Presets()["quick"]
	p.Name, p.TrainSamples, p.TestSamples = "tiny", 1000, 200
	p.Hidden, p.Epochs, p.Seeds = []int{16}, 1, []uint64{1}
	p.Batches, p.BaseBatch, p.LargeBatch, p.GhostBatch = []int{16, 64, 256}, 16, 128, 16
	p.ScheduleEpochs, p.DecayEpochs = 2, []int{1}
	p.Sharpness = engine.SharpnessConfig{Epsilon: 1e-3, Samples: 200, Steps: 2, Seed: 1}
	p.NoiseSmall, p.NoiseBig, p.NoiseSamples = 16, 128, 2
	return p
}

const subset = "../../testdata/mnist-subset"

// cancelAfter cancels a study when it announces run n+1, so n runs are saved.
type cancelAfter struct {
	n, seen int
	cancel  func()
	log     bytes.Buffer
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("[")) {
		c.seen++
		if c.seen > c.n {
			c.cancel()
		}
	}
	return c.log.Write(p)
}

// TestStudyResumesAndReports stops a study after three runs, continues it,
// and checks the report: every file is there and every finding says what
// was measured.
func TestStudyResumesAndReports(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset()
	ctx, cancel := context.WithCancel(context.Background())
	stop := &cancelAfter{n: 3, cancel: cancel}
	if _, err := Execute(ctx, p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: stop}); err == nil {
		t.Fatal("a cancelled study reported success")
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if len(saved) != 3 {
		t.Fatalf("%d runs saved after cancelling at the fourth, want 3", len(saved))
	}

	var log bytes.Buffer
	res, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	planned := len(plan(p))
	if len(res.Runs) != planned {
		t.Errorf("%d runs in the results, %d planned", len(res.Runs), planned)
	}
	if !strings.HasPrefix(log.String(), "[4/") {
		t.Errorf("the continued study did not start at run 4:\n%s", log.String())
	}
	for _, name := range []string{"report.html", "results.json", "runs.csv", "findings.csv", "preset.json"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(res.Findings) != 7 {
		t.Fatalf("%d findings, want 7", len(res.Findings))
	}
	for _, f := range res.Findings {
		t.Logf("%-18s %s: %s", f.Verdict, f.Claim, f.Measured)
		if f.Measured == "" || !strings.ContainsAny(f.Measured, "0123456789") {
			t.Errorf("finding %q carries no measured numbers: %q", f.Claim, f.Measured)
		}
		if f.Verdict != Inconclusive && len(f.Numbers) == 0 {
			t.Errorf("finding %q has a verdict but no numbers", f.Claim)
		}
	}
	var back Results
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Runs) != planned {
		t.Errorf("results.json: %v, %d runs", err, len(back.Runs))
	}

	// Another preset in the same directory is refused, not mixed in.
	other := p
	other.Seeds = []uint64{1, 2}
	if _, err := Execute(context.Background(), other, Options{Dir: dir, Device: "cpu", DataDir: subset}); err == nil || !strings.Contains(err.Error(), "another --out") {
		t.Errorf("a different preset in the same directory: %v", err)
	}
}
