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
// Only Alloc and Free change; the other methods are d's own. (Optional
// interfaces of d, such as BatchNormer, are hidden by the wrapper.)
func WithMemoryLimit(d Device, limit int64) Device {
	return &limited{Device: d, limit: limit}
}

type limited struct {
	Device
	limit, used int64
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
