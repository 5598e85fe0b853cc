package device_test

import (
	"testing"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/device/devicetest"
)

func TestCPUConformance(t *testing.T) {
	devicetest.Run(t, func(*testing.T) device.Device { return device.NewCPU() })
}

func TestOpen(t *testing.T) {
	d, err := device.Open("cpu")
	if err != nil || d.Info().Kind != "cpu" {
		t.Fatalf("Open(cpu) = %v, %v", d, err)
	}
	if _, err := device.Open("tpu"); err == nil {
		t.Error("Open(tpu) did not fail")
	}
}

func TestCPUBufferFromElsewhere(t *testing.T) {
	d := device.NewCPU()
	b, _ := d.Alloc(device.Float32, 4)
	d.Free(b)
	d.ReLU(b, b, 4)
	if err := d.Sync(); err == nil {
		t.Error("using a freed buffer did not fail")
	}
}
