package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// TestDivergenceKeepsTheLastFiniteWeights: on the CPU, after a run
// diverges, the weights in memory are those after the last step whose loss
// was finite, and finite; the device's guard made every later update a
// no-op. At lr 1e30 step 2's loss is NaN (step 1's update blows the
// weights up to about 1e30, still finite); at lr 1000 a later step's is.
func TestDivergenceKeepsTheLastFiniteWeights(t *testing.T) {
	train, test := loadSubset(t)
	for _, c := range []struct {
		lr     float64
		hidden []int
	}{{1e30, []int{32}}, {1000, []int{512, 512}}} {
		cfg := resumeConfig()
		cfg.GhostBatch, cfg.LR, cfg.Epochs, cfg.Hidden, cfg.Batch = 0, c.lr, 1, c.hidden, 128
		t.Run(fmt.Sprint("lr ", c.lr), func(t *testing.T) {
			checkDivergenceKeepsLastFiniteWeights(t, cfg, train, test.Subset(100), device.NewCPU)
		})
	}
}

// checkDivergenceKeepsLastFiniteWeights trains cfg, which must diverge, on
// a device from open, then trains it again on a fresh device, stopped after
// the step before the first non-finite loss, and compares the weights bit
// for bit.
func checkDivergenceKeepsLastFiniteWeights[D device.Device](t *testing.T, cfg engine.Config, train, test *data.Dataset, open func() D) {
	t.Helper()
	run := func(stopAfter int) ([][]float32, error) {
		d := open()
		defer d.Close()
		tr, err := engine.NewTrainer(d, cfg, train, test)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if stopAfter == 0 {
			cancel()
		}
		_, err = tr.Run(ctx, engine.Hooks{Step: func(epoch, done, total int) {
			if done == stopAfter {
				cancel()
			}
		}})
		params, readErr := tr.Model.ReadParams(d, false)
		if readErr != nil {
			t.Fatal(readErr)
		}
		return params, err
	}
	diverged, err := run(-1)
	if !errors.Is(err, engine.ErrDiverged) {
		t.Fatalf("lr %g: %v, want divergence", cfg.LR, err)
	}
	var step int
	if _, scanErr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "the loss of step"):], "the loss of step %d", &step); scanErr != nil {
		t.Fatalf("%v: %v", err, scanErr)
	}
	want, err := run(step - 1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the run stopped after step %d: %v", step-1, err)
	}
	for i := range want {
		for j, v := range diverged[i] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("after divergence at step %d, parameter %d[%d] is %g", step, i, j, v)
			}
			if math.Float32bits(v) != math.Float32bits(want[i][j]) {
				t.Fatalf("after divergence at step %d, parameter %d[%d] is %g; after step %d it was %g", step, i, j, v, step-1, want[i][j])
			}
		}
	}
}
