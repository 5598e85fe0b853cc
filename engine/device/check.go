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
