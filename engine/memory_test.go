package engine_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// TestPlanMemoryMatchesAllocations: the plan's device part is exactly what
// a trainer allocates, for every kind of run whose buffers differ.
func TestPlanMemoryMatchesAllocations(t *testing.T) {
	train, test := loadSubset(t)
	for _, tc := range []struct {
		name   string
		change func(*engine.Config)
	}{
		{"default", func(*engine.Config) {}},
		{"eval batch above the batch", func(c *engine.Config) { c.EvalBatch = 700 }},
		{"increase-batch", func(c *engine.Config) {
			c.Epochs, c.DecayEpochs, c.IncreaseBatch, c.DecayFactor, c.MaxBatch = 3, []int{1, 2}, true, 0.5, 1000
		}},
		{"ghost batch norm", func(c *engine.Config) { c.GhostBatch = 16 }},
		{"adam", func(c *engine.Config) { useAdam(c, engine.Adam) }},
		{"adamw, batch norm", func(c *engine.Config) { useAdam(c, engine.AdamW); c.BatchNorm = true }},
		{"pinned-async uint8", func(c *engine.Config) { c.Transfer = mustStrategy(t, "pinned-async,uint8") }},
		{"resident", func(c *engine.Config) { c.Transfer = mustStrategy(t, "resident") }},
		{"lenet5", func(c *engine.Config) { c.Hidden, c.Model = nil, "lenet5" }},
		{"cnn, eval batch above the batch, adam", func(c *engine.Config) {
			c.Hidden, c.Model, c.EvalBatch = nil, "cnn:8,16,4", 300
			useAdam(c, engine.Adam)
		}},
		{"cnn, ghost batch norm over channels", func(c *engine.Config) { c.Hidden, c.Model, c.GhostBatch = nil, "cnn:8,16", 16 }},
	} {
		cfg := smallConfig()
		tc.change(&cfg)
		d := engine.NewCountingCPU()
		if _, err := engine.NewTrainer(d, cfg, train, test); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if plan := engine.PlanMemory(cfg, engine.ShapeOf(train, test)); plan.Device() != d.Bytes {
			t.Errorf("%s: planned %d device bytes, allocated %d", tc.name, plan.Device(), d.Bytes)
		}
	}
}

// TestHugeRunsAreRefusedBeforeAllocating is issue 12's case 1: widths and
// batches whose buffers overflow or exceed the budget are refused with one
// line naming the footprint, the budget and what would fit, and nothing is
// allocated.
func TestHugeRunsAreRefusedBeforeAllocating(t *testing.T) {
	train, test := loadSubset(t)
	for _, tc := range []struct {
		hidden    []int
		evalBatch int
		budget    int64
		hint      string
	}{
		{[]int{4503599627370496}, 1000, 256 << 20, "not even a batch of 1 fits"},
		{[]int{math.MaxInt}, 1000, 256 << 20, "not even a batch of 1 fits"},
		{[]int{2147483648}, 1000, 256 << 20, "not even a batch of 1 fits"},
		{[]int{50000, 50000}, 1000, 256 << 20, "not even a batch of 1 fits"},
		{[]int{64}, 100000000, 256 << 20, "the largest --eval-batch that fits is"},
		{[]int{4096, 4096}, 1000, 512 << 20, "the largest batch that fits is"},
	} {
		cfg := smallConfig()
		cfg.Hidden, cfg.EvalBatch, cfg.Batch = tc.hidden, tc.evalBatch, 5000
		cfg.Memory = tc.budget
		d := engine.NewCountingCPU()
		_, err := engine.NewTrainer(d, cfg, train, test)
		if !errors.Is(err, device.ErrOutOfMemory) {
			t.Fatalf("%v, eval batch %d: %v, want an out-of-memory refusal", tc.hidden, tc.evalBatch, err)
		}
		msg := err.Error()
		for _, want := range []string{"the run needs ", "memory budget of " + engine.FormatBytes(tc.budget), tc.hint} {
			if !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
				t.Errorf("%v: %q lacks %q", tc.hidden, msg, want)
			}
		}
		if d.Bytes != 0 {
			t.Errorf("%v: %d bytes allocated before the refusal", tc.hidden, d.Bytes)
		}
	}
}

// TestLargestBatchThatFitsFits: the batch the refusal names does fit.
func TestLargestBatchThatFitsFits(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Hidden, cfg.Batch, cfg.EvalBatch, cfg.Memory = []int{1024, 1024}, 5000, 1000, 64<<20
	_, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
	var b int
	if _, scanErr := fmtSscan(err, "the largest batch that fits is ", &b); scanErr != nil {
		t.Fatalf("%v: %v", err, scanErr)
	}
	cfg.Batch, cfg.EvalBatch = b, min(b, cfg.EvalBatch)
	if _, err := engine.NewTrainer(device.NewCPU(), cfg, train, test); err != nil {
		t.Errorf("batch %d, named as fitting: %v", b, err)
	}
	cfg.Batch = b + 1
	if _, err := engine.NewTrainer(device.NewCPU(), cfg, train, test); !errors.Is(err, device.ErrOutOfMemory) {
		t.Errorf("batch %d, one above what fits: %v", b+1, err)
	}
}

// fmtSscan reads the number after prefix in err's message.
func fmtSscan(err error, prefix string, n *int) (int, error) {
	if err == nil {
		return 0, errors.New("no error")
	}
	msg := err.Error()
	i := strings.Index(msg, prefix)
	if i < 0 {
		return 0, errors.New("no " + prefix)
	}
	return fmt.Sscan(msg[i+len(prefix):], n)
}

func mustStrategy(t *testing.T, name string) data.Strategy {
	s, err := data.ParseStrategy(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
