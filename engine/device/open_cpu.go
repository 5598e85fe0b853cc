//go:build cpu

package device

import "fmt"

// CUDACompiled reports whether this binary contains the CUDA device.
const CUDACompiled = false

// Default is the device used when none is named: the CPU in this build.
func Default() string { return "cpu" }

// Available lists the devices this binary can open.
func Available() []Info { return []Info{NewCPU().Info()} }

func openAccelerator(name string) (Device, error) {
	return nil, fmt.Errorf("unknown device %q: this binary was built with -tags cpu and has only the \"cpu\" device (build without the tag, on a machine with CUDA, for \"cuda\")", name)
}
