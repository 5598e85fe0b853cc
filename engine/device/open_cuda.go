//go:build !cpu

package device

import (
	"fmt"
	"strconv"
	"strings"

	"gorgonia.org/cu"
)

// CUDACompiled reports whether this binary contains the CUDA device.
//
// In this build gorgonia.org/cu initializes the driver when the program
// starts and exits if that fails (no driver or no GPU): a binary built
// without -tags cpu runs only where CUDA works.
const CUDACompiled = true

// Default is the device used when none is named: "cuda" (device 0) when the
// machine has a CUDA device, else "cpu".
func Default() string {
	if n, err := cu.NumDevices(); err == nil && n > 0 {
		return "cuda"
	}
	return "cpu"
}

// Available lists the devices this binary can open: the CPU, then every CUDA
// device (described without opening it, so FreeMemory is 0).
func Available() []Info {
	infos := []Info{NewCPU().Info()}
	n, _ := cu.NumDevices()
	for i := 0; i < n; i++ {
		if info, err := cudaInfo(i); err == nil {
			infos = append(infos, info)
		}
	}
	return infos
}

// openAccelerator opens "cuda" (device 0) or "cuda:N".
func openAccelerator(name string) (Device, error) {
	ordinal := 0
	if rest, ok := strings.CutPrefix(name, "cuda:"); ok {
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("unknown device %q: want \"cpu\", \"cuda\" or \"cuda:N\" with N a device number", name)
		}
		ordinal = n
	} else if name != "cuda" {
		return nil, fmt.Errorf("unknown device %q: want \"cpu\", \"cuda\" or \"cuda:N\"", name)
	}
	d, err := NewCUDA(ordinal)
	if err != nil {
		return nil, err // not a nil *CUDA inside a non-nil Device
	}
	return d, nil
}
