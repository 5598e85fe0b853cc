package device_test

import (
	"errors"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

func TestMemoryLimit(t *testing.T) {
	d := device.WithMemoryLimit(device.NewCPU(), 1000)
	a, err := d.Alloc(device.Float32, 200) // 800 bytes
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Alloc(device.Float32, 51); !errors.Is(err, device.ErrOutOfMemory) {
		t.Fatalf("804 bytes past a 1000-byte budget with 800 used: %v", err)
	}
	if _, err := d.Alloc(device.Uint8, 200); err != nil {
		t.Fatalf("200 bytes that fit: %v", err)
	}
	d.Free(a)
	if _, err := d.Alloc(device.Float32, 200); err != nil {
		t.Fatalf("after Free: %v", err)
	}
}

// TestMemoryLimitKeepsModelPrimitives: a CNN with batch norm trains on a
// budgeted device (advise --memory), so the wrapper keeps the CPU's
// BatchNormer and Convolver.
func TestMemoryLimitKeepsModelPrimitives(t *testing.T) {
	d := device.WithMemoryLimit(device.NewCPU(), 1<<20)
	if _, ok := d.(device.BatchNormer); !ok {
		t.Error("the budgeted CPU has no BatchNormer")
	}
	if _, ok := d.(device.Convolver); !ok {
		t.Error("the budgeted CPU has no Convolver")
	}
}
