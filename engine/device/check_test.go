package device

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestAllocBytes checks that sizes whose byte count overflows, or exceeds
// what any machine addresses, are errors and not wrapped-around numbers.
func TestAllocBytes(t *testing.T) {
	for _, c := range []struct {
		t    DType
		n    int
		want int64
	}{{Float32, 0, 0}, {Uint8, 7, 7}, {Int32, 5, 20}, {Uint8, maxAllocBytes, maxAllocBytes}, {Float32, maxAllocBytes / 4, maxAllocBytes}} {
		if got, err := allocBytes(c.t, c.n); err != nil || got != c.want {
			t.Errorf("allocBytes(%v, %d) = %d, %v; want %d", c.t, c.n, got, err, c.want)
		}
	}
	for _, c := range []struct {
		t    DType
		n    int
		want string
	}{
		{Float32, 1 << 52, "Alloc: 4503599627370496 float32 elements is more bytes than any device can address"},
		{Float32, math.MaxInt, "more bytes than"},
		{Int32, math.MaxInt/4 + 1, "more bytes than"}, // n·4 wraps to a small number
		{Uint8, maxAllocBytes + 1, "more bytes than"},
		{Float32, -1, "negative length"},
		{DType(9), 1, "unknown dtype"},
	} {
		_, err := allocBytes(c.t, c.n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("allocBytes(%v, %d) gave %v, want %q", c.t, c.n, err, c.want)
		}
	}
	if _, err := allocBytes(Float32, 1<<52); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("an allocation beyond any device does not wrap ErrOutOfMemory: %v", err)
	}
}

// TestCPUAllocTooLarge checks that the CPU refuses, instead of crashing in
// Go's runtime, what cannot fit, also behind a memory limit.
func TestCPUAllocTooLarge(t *testing.T) {
	for _, d := range []Device{NewCPU(), WithMemoryLimit(NewCPU(), 1<<20)} {
		for _, n := range []int{1 << 52, math.MaxInt, 1 << 46} {
			if _, err := d.Alloc(Float32, n); !errors.Is(err, ErrOutOfMemory) {
				t.Errorf("Alloc(float32, %d) gave %v, want out of memory", n, err)
			}
		}
	}
}

// TestOwnership checks the buffer checks every device shares: a buffer of
// another device, or one used after Free, is an error naming the call.
func TestOwnership(t *testing.T) {
	a, b := NewCPU(), NewCPU()
	buf, err := a.Alloc(Float32, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CopyIn(buf, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "CopyIn: buffer *device.cpuBuffer does not belong to this CPU device") {
		t.Errorf("a buffer of another CPU device gave %v", err)
	}
	b.Free(buf) // not b's: ignored
	if err := a.CopyIn(buf, make([]byte, 4)); err != nil {
		t.Errorf("another device's Free freed the buffer: %v", err)
	}
	a.Free(buf)
	if err := a.CopyOut(make([]byte, 4), buf); err == nil || !strings.Contains(err.Error(), "CopyOut: buffer used after Free") {
		t.Errorf("a freed buffer gave %v", err)
	}
	before := a.Traffic()
	if err := a.CopyIn(buf, make([]byte, 4)); err == nil {
		t.Error("CopyIn into a freed buffer did not fail")
	}
	if a.Traffic() != before {
		t.Errorf("a failed copy was counted: %+v", a.Traffic().Sub(before))
	}
}
