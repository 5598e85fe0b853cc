package engine_test

import (
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

// TestGraphNeedsGrapher checks that --graph on a device without CUDA graphs
// is a clear error up front.
func TestGraphNeedsGrapher(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Graph = true
	_, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
	if err == nil || !strings.Contains(err.Error(), "--graph") {
		t.Errorf("Graph on the CPU gave %v, want an error naming --graph", err)
	}
}
