package device

import (
	"errors"
	"fmt"
)

// ErrOutOfMemory is wrapped by allocation errors that mean "does not fit":
// the GPU's out-of-memory, or a memory budget set with WithMemoryLimit.
var ErrOutOfMemory = errors.New("out of memory")

// WithMemoryLimit returns d with a budget: allocations past limit bytes in
// total fail with ErrOutOfMemory, as the GPU's would. On the CPU, where
// allocating rarely fails, it is how `batchlab advise` finds the largest
// batch that fits a RAM budget, and how tests exercise that search.
// Only Alloc and Free change; the other methods are d's own. The optional
// interfaces a CNN needs, BatchNormer and Convolver, stay visible when d
// has both, as the CPU and CUDA devices do (advise --memory on a CNN);
// other optional interfaces are hidden by the wrapper.
func WithMemoryLimit(d Device, limit int64) Device {
	l := &limited{Device: d, limit: limit}
	if m, ok := d.(modelDevice); ok {
		return &limitedModel{l, m, m}
	}
	return l
}

type limited struct {
	Device
	limit, used int64
}

// modelDevice is a device with every primitive the engine's layers use.
type modelDevice interface {
	Device
	BatchNormer
	Convolver
}

type limitedModel struct {
	*limited
	BatchNormer
	Convolver
}

func (l *limited) Alloc(t DType, n int) (Buffer, error) {
	need, err := allocBytes(t, n)
	if err != nil {
		return nil, err
	}
	if l.used+need > l.limit {
		return nil, fmt.Errorf("Alloc: %d bytes asked, %d of the %d-byte budget free: %w", need, l.limit-l.used, l.limit, ErrOutOfMemory)
	}
	b, err := l.Device.Alloc(t, n)
	if err == nil {
		l.used += need
	}
	return b, err
}

func (l *limited) Free(b Buffer) {
	l.used -= int64(b.Len()) * int64(b.DType().Size())
	l.Device.Free(b)
}
