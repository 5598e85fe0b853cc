package engine

import "github.com/batchlab/batchlab/engine/device"

// CountingCPU is the CPU device adding up the bytes allocated on it, so
// tests can hold the memory plan to what is allocated. (Exported for the
// engine_test package, in a test file: not part of the package's API.)
type CountingCPU struct {
	*device.CPU
	Bytes int64
}

func NewCountingCPU() *CountingCPU { return &CountingCPU{CPU: device.NewCPU()} }

func (c *CountingCPU) Alloc(t device.DType, n int) (device.Buffer, error) {
	c.Bytes += int64(n) * int64(t.Size())
	return c.CPU.Alloc(t, n)
}
