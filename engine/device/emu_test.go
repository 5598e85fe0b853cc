//go:build emu

package device_test

import (
	"fmt"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/device/devicetest"
	"github.com/batchlab/batchlab/kernels"
)

// newEmulated opens a fresh emulated device, closed when the test ends.
func newEmulated(gridCap int) devicetest.NewDevice {
	return func(t *testing.T) device.Device {
		d := device.NewEmulated(gridCap)
		t.Cleanup(func() { d.Close() })
		return d
	}
}

// TestEmulatedConformance runs the whole conformance suite on the CUDA
// kernels, emulated on the host: with a grid cap of 3 blocks, so that every
// grid-stride loop goes round many times, and with a cap no input reaches,
// one thread per element, as on a big GPU.
func TestEmulatedConformance(t *testing.T) {
	for _, gridCap := range []int{3, 1 << 16} {
		t.Run(fmt.Sprintf("gridCap=%d", gridCap), func(t *testing.T) {
			devicetest.Run(t, newEmulated(gridCap))
		})
	}
}

// TestEmulatedKernels checks that every kernel of the table is compiled into
// the emulation with the table's parameter count.
func TestEmulatedKernels(t *testing.T) {
	for _, k := range kernels.Kernels() {
		if got := device.EmulatedKernelArity(k.Name); got != len(k.Params) {
			t.Errorf("%s: the emulation has %d parameters, the table %d", k.Name, got, len(k.Params))
		}
	}
}
