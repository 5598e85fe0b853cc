package device

import "fmt"

// Argument checks shared by every device: a wrong shape or dtype becomes the
// device's first error, naming the call and the argument, instead of a panic
// or a silent out-of-bounds access on the GPU.

// firstError keeps the first error a device meets. Devices embed it.
type firstError struct{ err error }

func (f *firstError) Err() error { return f.err }

// fail records err if no error is recorded yet.
func (f *firstError) fail(err error) {
	if f.err == nil && err != nil {
		f.err = err
	}
}

// failed reports whether a compute call must be skipped.
func (f *firstError) failed() bool { return f.err != nil }

// arg is one buffer argument of a call with what the call needs of it.
type arg struct {
	name  string
	buf   Buffer
	dtype DType
	n     int // elements the call reads or writes
}

func f32(name string, b Buffer, n int) arg { return arg{name, b, Float32, n} }
func i32(name string, b Buffer, n int) arg { return arg{name, b, Int32, n} }
func u8(name string, b Buffer, n int) arg  { return arg{name, b, Uint8, n} }

// checkArgs validates the buffer arguments of op and the sizes it was given.
func checkArgs(op string, sizes []int, args ...arg) error {
	for _, s := range sizes {
		if s < 0 {
			return fmt.Errorf("%s: negative size %d", op, s)
		}
	}
	for _, a := range args {
		if a.buf == nil {
			return fmt.Errorf("%s: %s is nil", op, a.name)
		}
		if a.buf.DType() != a.dtype {
			return fmt.Errorf("%s: %s is %v, want %v", op, a.name, a.buf.DType(), a.dtype)
		}
		if a.buf.Len() < a.n {
			return fmt.Errorf("%s: %s holds %d elements, the call needs %d", op, a.name, a.buf.Len(), a.n)
		}
	}
	return nil
}

// checkSlot validates the slot a per-step result is written to.
func checkSlot(op string, b Buffer, slot int) error {
	if b != nil && (slot < 0 || slot >= b.Len()) {
		return fmt.Errorf("%s: slot %d outside a buffer of %d", op, slot, b.Len())
	}
	return nil
}

// checkCopy validates a host↔device copy of nbytes.
func checkCopy(op string, b Buffer, nbytes int) error {
	if b == nil {
		return fmt.Errorf("%s: nil buffer", op)
	}
	if nbytes%b.DType().Size() != 0 {
		return fmt.Errorf("%s: %d bytes is not a whole number of %v elements", op, nbytes, b.DType())
	}
	if have := b.Len() * b.DType().Size(); nbytes > have {
		return fmt.Errorf("%s: %d bytes do not fit a buffer of %d bytes", op, nbytes, have)
	}
	return nil
}

// What every device's memory calls share: the buffer's bookkeeping and
// ownership, the allocation and copy checks, and the traffic they count.

// bufferBase is what every device's buffers hold alike. Buffer types embed
// it, so Len, DType and the ownership check are one piece of code.
type bufferBase struct {
	owner any // the device that made the buffer
	dtype DType
	n     int
	freed bool
}

func (b *bufferBase) DType() DType      { return b.dtype }
func (b *bufferBase) Len() int          { return b.n }
func (b *bufferBase) base() *bufferBase { return b }
func (b *bufferBase) sizeBytes() int64  { return int64(b.n) * int64(b.dtype.Size()) }

// deviceBuffer is a buffer type of this package.
type deviceBuffer interface {
	Buffer
	base() *bufferBase
}

// own returns b as a live buffer of owner's, of owner's buffer type B;
// kind names the device in the error ("CPU", "CUDA").
func own[B deviceBuffer](op, kind string, owner any, b Buffer) (B, error) {
	ob, ok := b.(B)
	if !ok || ob.base().owner != owner {
		var none B
		return none, fmt.Errorf("%s: buffer %T does not belong to this %s device", op, b, kind)
	}
	if ob.base().freed {
		var none B
		return none, fmt.Errorf("%s: buffer used after Free", op)
	}
	return ob, nil
}

// ownCopy checks a host↔device copy of nbytes into or out of b, and returns
// b as owner's live buffer.
func ownCopy[B deviceBuffer](op, kind string, owner any, b Buffer, nbytes int) (B, error) {
	if err := checkCopy(op, b, nbytes); err != nil {
		var none B
		return none, err
	}
	return own[B](op, kind, owner, b)
}

// maxAllocBytes bounds every allocation: 2^48 bytes, the 48-bit virtual
// address space of x86-64 and arm64 (and the most Go's runtime allocates).
// Checking n against it before multiplying keeps n·size from overflowing.
const maxAllocBytes = 1 << 48

// allocBytes checks an allocation of n elements of t and returns its size
// in bytes.
func allocBytes(t DType, n int) (int64, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("Alloc: negative length %d", n)
	case t > Int32:
		return 0, fmt.Errorf("Alloc: unknown dtype %v", t)
	case int64(n) > maxAllocBytes/int64(t.Size()):
		return 0, fmt.Errorf("Alloc: %d %v elements is more bytes than any device can address (2^48): %w", n, t, ErrOutOfMemory)
	}
	return int64(n) * int64(t.Size()), nil
}

// copiedIn and copiedOut count one copy of n bytes.
func (t *Traffic) copiedIn(n int) {
	t.HostToDeviceBytes += int64(n)
	t.HostToDeviceCopies++
}

func (t *Traffic) copiedOut(n int) {
	t.DeviceToHostBytes += int64(n)
	t.DeviceToHostCopies++
}
