//go:build !cpu

package engine_test

import (
	"testing"

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
