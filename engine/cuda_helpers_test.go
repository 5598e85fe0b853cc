//go:build !cpu

package engine_test

import (
	"context"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// openCUDA opens the first CUDA device (a GPU, or the fake driver's).
func openCUDA(t *testing.T) device.Device {
	t.Helper()
	d, err := device.Open("cuda")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// trainAll trains a trainer for cfg on d to its end; the caller closes d.
func trainAll(t *testing.T, d device.Device, cfg engine.Config, train, test *data.Dataset) (*engine.Trainer, []engine.EpochStats) {
	t.Helper()
	tr, err := engine.NewTrainer(d, cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := tr.Run(context.Background(), engine.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, stats
}
