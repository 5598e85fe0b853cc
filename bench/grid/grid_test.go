package grid

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine"
)

const subset = "../../testdata/mnist-subset"

// tinyPlan is a grid of seconds on the MNIST subset.
func tinyPlan() Plan {
	return Plan{
		TrainSamples: 1024, TestSamples: 200, Hidden: []int{16}, Optimizer: engine.MomentumSGD, Momentum: 0.9,
		Batches: []int{16, 64, 256}, Seeds: []uint64{1}, LRs: []float64{0.05, 0.2}, Targets: []float64{1.5, 0.8},
		MaxEpochs: 3, SmoothSamples: 64,
		NoiseBatch: 16, NoiseSmall: 16, NoiseBig: 128, NoisePairs: 1, NoiseEvery: 8,
	}
}

// cancelAfter cancels ctx once the log has reported n finished runs.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(b []byte) (int, error) {
	if bytes.HasPrefix(b, []byte("[")) { // one write per line
		if c.n--; c.n == 0 {
			c.cancel()
		}
	}
	return len(b), nil
}

// finished counts the runs a log reports finished.
func finished(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "[") {
			n++
		}
	}
	return n
}

// TestResumedGridEqualsUninterrupted: a grid stopped after three runs (the
// fourth cancelled as it starts), with one finished result then truncated,
// and run again, ends with the same runs and the same analysis as a grid
// run in one go; the interrupted run left no result and no claim.
func TestResumedGridEqualsUninterrupted(t *testing.T) {
	p := tinyPlan()
	whole := t.TempDir()
	if missing, err := Execute(context.Background(), p, Options{Dir: whole, Device: "cpu", DataDir: subset}); err != nil || len(missing) != 0 {
		t.Fatalf("uninterrupted: %v, missing %v", err, missing)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Execute(ctx, p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: &cancelAfter{3, cancel}}); err == nil {
		t.Fatal("the interrupted grid returned no error")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "runs", "*"))
	if len(files) != 3 {
		t.Fatalf("after the interruption: %v, want 3 results and no claim", files)
	}
	if err := os.WriteFile(files[1], []byte(`{"schema":1,"id":`), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if missing, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: &log}); err != nil || len(missing) != 0 {
		t.Fatalf("resumed: %v, missing %v", err, missing)
	}
	if !strings.Contains(log.String(), "unreadable result") || finished(log.String()) != len(p.specs())-2 {
		t.Errorf("resumed: want the truncated result and the 4 not done rerun, got:\n%s", log.String())
	}
	wantRuns, _ := ReadRuns(whole, p)
	gotRuns, _ := ReadRuns(dir, p)
	for i := range wantRuns {
		wantRuns[i].Seconds, gotRuns[i].Seconds = 0, 0
		w, _ := json.Marshal(wantRuns[i])
		g, _ := json.Marshal(gotRuns[i])
		if !bytes.Equal(w, g) {
			t.Errorf("run %s differs after the resume", wantRuns[i].ID)
		}
	}
	var reached int
	for _, r := range wantRuns {
		if r.Kind == Train && r.Hits[0].Reached {
			reached++
		}
	}
	if reached == 0 || len(wantRuns[len(wantRuns)-1].Noise) == 0 {
		t.Errorf("a tiny grid that measures nothing: %d runs reached the first target, %d noise pairs", reached, len(wantRuns[len(wantRuns)-1].Noise))
	}
	a, err := Report(whole)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Error("the analyses differ")
	}
	for _, name := range []string{"grid.json", "points.csv", "fits.csv", "runs.csv", "noise.csv", "grid-sgd-steps.svg", "grid-sgd-best-lr.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("report: %v", err)
		}
	}
	// Two shards, one after the other, into one directory: the first leaves
	// the other's runs missing, the second completes the same runs.
	sharded := t.TempDir()
	first, err := Execute(context.Background(), p, Options{Dir: sharded, Device: "cpu", DataDir: subset, Shard: runstore.Shard{Index: 0, Count: 2}})
	if err != nil || len(first) == 0 || len(first) == len(p.specs()) {
		t.Fatalf("shard 0/2: %v, missing %v of %d", err, first, len(p.specs()))
	}
	if second, err := Execute(context.Background(), p, Options{Dir: sharded, Device: "cpu", DataDir: subset, Shard: runstore.Shard{Index: 1, Count: 2}}); err != nil || len(second) != 0 {
		t.Fatalf("shard 1/2: %v, missing %v", err, second)
	}
	c, err := Load(sharded)
	if err != nil {
		t.Fatal(err)
	}
	if jc, _ := json.Marshal(c); !bytes.Equal(ja, jc) {
		t.Error("two shards' analysis differs from one process's")
	}
	// The same directory refuses another plan.
	other := p
	other.MaxEpochs = 4
	if _, err := Execute(context.Background(), other, Options{Dir: dir, Device: "cpu", DataDir: subset}); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("another plan in the same directory: %v", err)
	}
}

func TestPlanErrors(t *testing.T) {
	for want, edit := range map[string]func(*Plan){
		"batch sizes, seeds and loss targets": func(p *Plan) { p.Targets = nil },
		"--lr-center":                         func(p *Plan) { p.LRs = nil },
		"must each be distinct":               func(p *Plan) { p.Batches = []int{16, 16} },
		"loss targets must be positive":       func(p *Plan) { p.Targets = []float64{-1} },
		"--noise-small":                       func(p *Plan) { p.NoiseBig = 8 },
		"larger than the 1024 training":       func(p *Plan) { p.Batches = []int{4096} },
	} {
		p := tinyPlan()
		edit(&p)
		if err := p.Validate(1024); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v", want, err)
		}
	}
	p := tinyPlan()
	p.LRs, p.LRCenter, p.LRScale, p.BaseBatch, p.LRSteps, p.LRFactor = nil, 0.1, engine.ScaleSqrt, 64, 1, 2
	if got := p.LRsAt(256); len(got) != 3 || got[0] != 0.1 || got[1] != 0.2 || got[2] != 0.4 {
		t.Errorf("LRs at 256 around 0.1 at 64, sqrt rule: %v", got)
	}
}
