package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// TestStrategiesTrainIdentically: every transfer strategy feeds the model
// the same numbers, so the same seed gives bit-identical loss curves and
// test results; only the bytes moved differ, as BatchTraffic says.
func TestStrategiesTrainIdentically(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(1000), test.Subset(300)
	cfg := smallConfig()
	cfg.Epochs, cfg.Batch, cfg.EvalBatch = 2, 64, 128 // a short last batch: 1000 = 15·64 + 40
	var ref []engine.EpochStats
	for _, s := range data.Strategies() {
		name := s.String()
		cfg.Transfer = s
		tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := tr.Run(context.Background(), engine.Hooks{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		full, copies := s.BatchTraffic(cfg.Batch, train.Features())
		short, _ := s.BatchTraffic(1000%cfg.Batch, train.Features())
		for _, e := range stats {
			if want := 15*full + short; e.H2DBytes != want || e.H2DCopies != int64(16*copies) {
				t.Errorf("%s epoch %d: %d bytes in %d copies, want %d in %d", name, e.Epoch, e.H2DBytes, e.H2DCopies, want, 16*copies)
			}
		}
		if ref == nil {
			ref = stats
			continue
		}
		for i, e := range stats {
			r := ref[i]
			if !slices.Equal(e.StepLosses, r.StepLosses) || e.TestLoss != r.TestLoss || e.TestAccuracy != r.TestAccuracy {
				t.Errorf("%s epoch %d differs from pageable: test loss %v vs %v, losses\n%v\n%v",
					name, e.Epoch, e.TestLoss, r.TestLoss, e.StepLosses, r.StepLosses)
			}
		}
	}
}

func TestBadTransfer(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Transfer = data.Strategy{Mode: "carrier-pigeon"}
	if _, err := engine.NewTrainer(device.NewCPU(), cfg, train, test); err == nil || !strings.Contains(err.Error(), "unknown transfer strategy") {
		t.Errorf("unknown strategy: got %v", err)
	}
}

// TestTrace: a traced run writes valid trace-event JSON with a span for
// every step and its kernel groups, for the strategy's copies and for
// the evaluation after the epoch.
func TestTrace(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(200), test.Subset(100)
	for _, c := range []struct {
		transfer string
		copies   []string
	}{
		{"pageable", []string{"assemble", "copy pixels", "copy labels"}},
		{"pinned-async,uint8", []string{"assemble", "copy batch (async)", "normalize"}},
		{"resident", []string{"copy indices", "gather", "normalize"}},
	} {
		cfg := smallConfig()
		s, err := data.ParseStrategy(c.transfer)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Epochs, cfg.Batch, cfg.Transfer = 1, 50, s
		d := device.NewCPU()
		tr, err := engine.NewTrainer(d, cfg, train, test)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w := trace.NewWriter(&buf)
		tl, err := trace.NewTimeline(d, w, "batchlab test")
		if err != nil {
			t.Fatal(err)
		}
		tr.SetTrace(tl)
		if _, err := tr.Run(context.Background(), engine.Hooks{}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var file struct {
			TraceEvents []struct {
				Name, Ph string
				Ts, Dur  float64
				Tid      int
			}
		}
		if err := json.Unmarshal(buf.Bytes(), &file); err != nil {
			t.Fatalf("%s: the trace is not valid JSON: %v\n%s", c.transfer, err, buf.Bytes())
		}
		count := map[string]int{}
		var steps, evals [][2]float64
		for _, e := range file.TraceEvents {
			if e.Ph != "X" {
				continue
			}
			count[e.Name]++
			if e.Ts < 0 || e.Dur < 0 {
				t.Errorf("%s: span %s at %g for %g µs", c.transfer, e.Name, e.Ts, e.Dur)
			}
			switch e.Name {
			case "step":
				steps = append(steps, [2]float64{e.Ts, e.Ts + e.Dur})
			case "evaluate":
				evals = append(evals, [2]float64{e.Ts, e.Ts + e.Dur})
			}
		}
		for _, name := range []string{"step", "forward", "backward", "update"} {
			if n := count[name]; n != 4 { // one per step
				t.Errorf("%s: %d %q spans, want 4 (all: %v)", c.transfer, n, name, count)
			}
		}
		for _, name := range c.copies {
			// one per step and one for the evaluation's single batch; the
			// first async copy is staged by Load, the rest by Prefetch
			if n := count[name]; n != 5 {
				t.Errorf("%s: %d %q spans, want 5 (all: %v)", c.transfer, n, name, count)
			}
		}
		if len(evals) != 1 || len(steps) == 0 || evals[0][0] < steps[len(steps)-1][1] {
			t.Errorf("%s: evaluation spans %v, want one after the last step %v", c.transfer, evals, steps)
		}
		for i := 1; i < len(steps); i++ {
			if steps[i][0] < steps[i-1][1] {
				t.Errorf("%s: step %d starts before step %d ends: %v", c.transfer, i, i-1, steps)
			}
		}
	}
}
