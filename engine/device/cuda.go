//go:build !cpu

package device

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
	"unsafe"

	"gorgonia.org/cu"
)

// CUDA is an NVIDIA GPU, driven through gorgonia.org/cu (the driver API) and
// cuBLAS.
//
// Threads. A CUDA context is current on one OS thread at a time, and cuBLAS
// runs in the context current on the calling thread. The device keeps a
// cu.Ctx, which runs one goroutine locked to an OS thread with the context
// current there; every driver call and every cuBLAS call (the handle is made
// there too) goes through ctx.Do as a closure, using cu's package-level
// functions, which return their errors (cu.Ctx's own methods keep only the
// last error). So the context is always current where the call runs, with no
// locking left to the caller. The price is one channel round trip per call;
// where that shows in small-batch steps, the design's fallback is to run the
// calls from one locked goroutine of our own.
//
// Stream. All work runs on the context's default (legacy) stream, so every
// call is ordered after the previous one and the synchronous copies wait for
// the compute issued before them. Separate compute and copy streams come with
// the asynchronous transfer strategies.
//
// Errors. Every failing CUDA or cuBLAS call becomes an error naming the
// device's method, the driver or cuBLAS call and its status; compute calls
// record it as the device's first error (see package device), never panic.
//
// A CUDA is not safe for concurrent use, like every Device.
type CUDA struct {
	firstError
	ctx     *cu.Ctx // nil once closed
	blas    *cublasHandle
	info    Info
	traffic Traffic
	buffers map[*cudaBuffer]struct{} // live buffers, freed by Close
	events  []*cudaEvent             // destroyed by Close
}

var _ Partial = (*CUDA)(nil)

type cudaBuffer struct {
	dev   *CUDA
	dtype DType
	n     int
	ptr   cu.DevicePtr // 0 for an empty buffer
	freed bool
}

func (b *cudaBuffer) DType() DType { return b.dtype }
func (b *cudaBuffer) Len() int     { return b.n }
func (b *cudaBuffer) bytes() int64 { return int64(b.n) * int64(b.dtype.Size()) }

type cudaEvent struct {
	dev      *CUDA
	ev       cu.Event
	recorded bool
}

var errClosed = errors.New("the device is closed")

// NewCUDA opens CUDA device ordinal: it creates a context on it and a cuBLAS
// handle in that context.
func NewCUDA(ordinal int) (*CUDA, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: cuDeviceGetCount: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: no device cuda:%d (this machine has %d CUDA devices)", ordinal, n)
	}
	info, err := cudaInfo(ordinal)
	if err != nil {
		return nil, err
	}
	ctx, err := newCtx(cu.Device(ordinal))
	if err != nil {
		return nil, err
	}
	d := &CUDA{ctx: ctx, info: info, buffers: map[*cudaBuffer]struct{}{}}
	err = ctx.Do(func() (err error) {
		d.blas, err = newCublas()
		return err
	})
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("cuda:%d: %w", ordinal, err)
	}
	return d, nil
}

// newCtx creates a context on dev and starts cu's locked goroutine for it.
// cu.NewContext panics on failure, so the context is made here:
// cuCtxCreate makes it current on the calling thread, which is therefore
// locked until the context is popped off it again; ctx.Run then makes it
// current on its own thread.
func newCtx(dev cu.Device) (*cu.Ctx, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cuctx, err := dev.MakeContext(cu.SchedAuto)
	if err != nil {
		return nil, fmt.Errorf("cuda:%d: cuCtxCreate: %w", int(dev), err)
	}
	if _, err := cu.PopCurrentCtx(); err != nil {
		cuctx.Destroy()
		return nil, fmt.Errorf("cuda:%d: cuCtxPopCurrent: %w", int(dev), err)
	}
	ctx := cu.CtxFromCUContext(dev, cuctx, cu.SchedAuto)
	started := make(chan error)
	go ctx.Run(started)
	if err := <-started; err != nil { // nil when Run closes the channel
		ctx.Close()
		return nil, fmt.Errorf("cuda:%d: cuCtxSetCurrent: %w", int(dev), err)
	}
	return ctx, nil
}

// cudaInfo describes a device without making a context on it.
func cudaInfo(ordinal int) (Info, error) {
	dev := cu.Device(ordinal)
	fail := func(call string, err error) (Info, error) {
		return Info{}, fmt.Errorf("cuda:%d: %s: %w", ordinal, call, err)
	}
	name, err := dev.Name()
	if err != nil {
		return fail("cuDeviceGetName", err)
	}
	total, err := dev.TotalMem()
	if err != nil {
		return fail("cuDeviceTotalMem", err)
	}
	major, err := dev.Attribute(cu.ComputeCapabilityMajor)
	if err != nil {
		return fail("cuDeviceGetAttribute", err)
	}
	minor, err := dev.Attribute(cu.ComputeCapabilityMinor)
	if err != nil {
		return fail("cuDeviceGetAttribute", err)
	}
	return Info{
		Kind:              "cuda",
		Name:              name,
		Ordinal:           ordinal,
		ComputeCapability: fmt.Sprintf("%d.%d", major, minor),
		TotalMemory:       total,
	}, nil
}

// do runs fn on the context's thread.
func (d *CUDA) do(fn func() error) error {
	if d.ctx == nil {
		return errClosed
	}
	return d.ctx.Do(fn)
}

// call names the driver or cuBLAS call in its error.
func call(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Info describes the device, with the memory free now (0 once closed or if
// the driver cannot tell).
func (d *CUDA) Info() Info {
	info := d.info
	d.do(func() error {
		free, _, err := cu.MemInfo()
		if err == nil {
			info.FreeMemory = free
		}
		return nil
	})
	return info
}

func (d *CUDA) Alloc(t DType, n int) (Buffer, error) {
	if d.ctx == nil {
		return nil, fmt.Errorf("cuda: Alloc: %w", errClosed)
	}
	if n < 0 {
		return nil, fmt.Errorf("Alloc: negative length %d", n)
	}
	if t > Int32 {
		return nil, fmt.Errorf("Alloc: unknown dtype %v", t)
	}
	b := &cudaBuffer{dev: d, dtype: t, n: n}
	if n > 0 { // cuMemAlloc refuses 0 bytes
		size := b.bytes()
		err := d.do(func() error {
			ptr, err := cu.MemAlloc(size)
			if errors.Is(err, cu.OutOfMemory) {
				free, total, _ := cu.MemInfo()
				return fmt.Errorf("%d bytes asked, %d of %d bytes free: cuMemAlloc: %w", size, free, total, err)
			}
			if err != nil {
				return call("cuMemAlloc", err)
			}
			if err := cu.MemsetD8(ptr, 0, size); err != nil {
				cu.MemFree(ptr)
				return call("cuMemsetD8", err)
			}
			b.ptr = ptr
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("cuda: Alloc(%v, %d): %w", t, n, err)
		}
	}
	d.buffers[b] = struct{}{}
	return b, nil
}

// Free releases b. Like the CPU device's, it ignores a buffer that is not
// one of this device's live buffers.
func (d *CUDA) Free(b Buffer) {
	cb, ok := b.(*cudaBuffer)
	if !ok || cb.dev != d || cb.freed {
		return
	}
	cb.freed = true
	delete(d.buffers, cb)
	if cb.ptr != 0 {
		err := d.do(func() error { return call("cuMemFree", cu.MemFree(cb.ptr)) })
		if err != nil {
			d.fail(fmt.Errorf("cuda: Free: %w", err))
		}
		cb.ptr = 0
	}
}

// own returns b as this device's live buffer.
func (d *CUDA) own(op string, b Buffer) (*cudaBuffer, error) {
	cb, ok := b.(*cudaBuffer)
	if !ok || cb.dev != d {
		return nil, fmt.Errorf("%s: buffer %T does not belong to this CUDA device", op, b)
	}
	if cb.freed {
		return nil, fmt.Errorf("%s: buffer used after Free", op)
	}
	return cb, nil
}

// CopyIn is a synchronous host→device copy: src may be reused on return.
func (d *CUDA) CopyIn(dst Buffer, src []byte) error {
	if err := checkCopy("CopyIn", dst, len(src)); err != nil {
		return err
	}
	b, err := d.own("CopyIn", dst)
	if err != nil {
		return err
	}
	if len(src) > 0 {
		err := d.do(func() error {
			return call("cuMemcpyHtoD", cu.MemcpyHtoD(b.ptr, unsafe.Pointer(&src[0]), int64(len(src))))
		})
		if err != nil {
			return fmt.Errorf("cuda: CopyIn: %w", err)
		}
	}
	d.traffic.HostToDeviceBytes += int64(len(src))
	d.traffic.HostToDeviceCopies++
	return nil
}

// CopyOut is a synchronous device→host copy, ordered after the work issued
// before it.
func (d *CUDA) CopyOut(dst []byte, src Buffer) error {
	if err := checkCopy("CopyOut", src, len(dst)); err != nil {
		return err
	}
	b, err := d.own("CopyOut", src)
	if err != nil {
		return err
	}
	if len(dst) > 0 {
		err := d.do(func() error {
			return call("cuMemcpyDtoH", cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), b.ptr, int64(len(dst))))
		})
		if err != nil {
			return fmt.Errorf("cuda: CopyOut: %w", err)
		}
	}
	d.traffic.DeviceToHostBytes += int64(len(dst))
	d.traffic.DeviceToHostCopies++
	return nil
}

func (d *CUDA) Traffic() Traffic { return d.traffic }

// bufs resolves the call's buffers after validating them; ok is false when
// the call must be skipped (an earlier or a new error).
func (d *CUDA) bufs(op string, sizes []int, args ...arg) ([]*cudaBuffer, bool) {
	if d.failed() {
		return nil, false
	}
	if err := checkArgs(op, sizes, args...); err != nil {
		d.fail(err)
		return nil, false
	}
	out := make([]*cudaBuffer, len(args))
	for i, a := range args {
		b, err := d.own(op, a.buf)
		if err != nil {
			d.fail(err)
			return nil, false
		}
		out[i] = b
	}
	return out, true
}

// run runs fn on the context's thread and records its error, named by op.
func (d *CUDA) run(op string, fn func() error) {
	if err := d.do(fn); err != nil {
		d.fail(fmt.Errorf("cuda: %s: %w", op, err))
	}
}

// Gemm runs cublasSgemm; rowMajorToColMajor maps the row-major call onto
// cuBLAS's column-major one. cuBLAS's default math mode computes in full
// float32 (no TF32 tensor cores).
func (d *CUDA) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) {
	bs, ok := d.bufs("Gemm", []int{m, n, k}, f32("A", a, m*k), f32("B", b, k*n), f32("C", c, m*n))
	if !ok || m == 0 || n == 0 {
		return
	}
	if max(m, n, k) > math.MaxInt32 {
		d.fail(fmt.Errorf("Gemm: %d×%d×%d is beyond cuBLAS's 32-bit sizes", m, n, k))
		return
	}
	cp := bs[2].ptr
	if k == 0 { // C = beta·C, as the definition says; BLAS leading dimensions need k > 0
		switch {
		case beta == 0: // a memset, so that NaN in C does not survive
			d.run("Gemm", func() error { return call("cuMemsetD8", cu.MemsetD8(cp, 0, int64(m*n)*4)) })
		case beta != 1 && m*n <= math.MaxInt32:
			d.run("Gemm", func() error { return d.blas.sscal(m*n, beta, cp) })
		case beta != 1:
			d.fail(fmt.Errorf("Gemm: %d×%d C is beyond cuBLAS's 32-bit sizes", m, n))
		}
		return
	}
	g := rowMajorToColMajor(transA, transB, m, n, k)
	ap, bp := bs[0].ptr, bs[1].ptr
	d.run("Gemm", func() error { return d.blas.sgemm(g, alpha, bp, ap, beta, cp) }) // B first: see rowMajorToColMajor
}

// The primitives below are the CUDA kernels of the next step. Until they are
// written each one records an error wrapping ErrUnsupported, and
// MissingPrimitives lists them so the trainer refuses the device up front.

var cudaMissing = []string{
	"AddBias", "ReLU", "ReLUBackward", "SoftmaxCrossEntropy", "CountCorrect",
	"ColumnSum", "MomentumSGD", "NormalizeBytes", "GatherRows",
}

// MissingPrimitives lists the Device methods this device cannot run yet.
func (d *CUDA) MissingPrimitives() []string { return append([]string(nil), cudaMissing...) }

func (d *CUDA) unsupported(op string) {
	d.fail(fmt.Errorf("cuda: %s: %w yet (the CUDA kernels are not written)", op, ErrUnsupported))
}

func (d *CUDA) AddBias(x, bias Buffer, rows, cols int) { d.unsupported("AddBias") }
func (d *CUDA) ReLU(y, x Buffer, n int)                { d.unsupported("ReLU") }
func (d *CUDA) ReLUBackward(dx, dy, y Buffer, n int)   { d.unsupported("ReLUBackward") }
func (d *CUDA) SoftmaxCrossEntropy(grad, losses, logits, labels Buffer, slot, rows, cols int, gradScale float32) {
	d.unsupported("SoftmaxCrossEntropy")
}
func (d *CUDA) CountCorrect(counts, logits, labels Buffer, slot, rows, cols int) {
	d.unsupported("CountCorrect")
}
func (d *CUDA) ColumnSum(dst, src Buffer, rows, cols int, beta float32) { d.unsupported("ColumnSum") }
func (d *CUDA) MomentumSGD(w, grad, velocity Buffer, n int, lr, momentum, weightDecay float32) {
	d.unsupported("MomentumSGD")
}
func (d *CUDA) NormalizeBytes(dst, src Buffer, n int, scale, shift float32) {
	d.unsupported("NormalizeBytes")
}
func (d *CUDA) GatherRows(dst, src, idx Buffer, rows, rowLen int) { d.unsupported("GatherRows") }

func (d *CUDA) Zero(b Buffer) {
	if d.failed() {
		return
	}
	cb, err := d.own("Zero", b)
	if err != nil {
		d.fail(err)
		return
	}
	if cb.ptr != 0 {
		d.run("Zero", func() error { return call("cuMemsetD8", cu.MemsetD8(cb.ptr, 0, cb.bytes())) })
	}
}

func (d *CUDA) NewEvent() (Event, error) {
	e := &cudaEvent{dev: d}
	err := d.do(func() (err error) {
		e.ev, err = cu.MakeEvent(cu.DefaultEvent)
		return call("cuEventCreate", err)
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: NewEvent: %w", err)
	}
	d.events = append(d.events, e)
	return e, nil
}

func (d *CUDA) event(op string, e Event) (*cudaEvent, error) {
	ev, ok := e.(*cudaEvent)
	if !ok || ev.dev != d {
		return nil, fmt.Errorf("%s: event %T does not belong to this CUDA device", op, e)
	}
	return ev, nil
}

func (d *CUDA) RecordEvent(e Event) {
	ev, err := d.event("RecordEvent", e)
	if err != nil {
		d.fail(err)
		return
	}
	d.run("RecordEvent", func() error { return call("cuEventRecord", ev.ev.Record(cu.NoStream)) })
	ev.recorded = true
}

// EventElapsed waits for to and returns the GPU time from from to to.
func (d *CUDA) EventElapsed(from, to Event) (time.Duration, error) {
	a, err := d.event("EventElapsed", from)
	if err != nil {
		return 0, err
	}
	b, err := d.event("EventElapsed", to)
	if err != nil {
		return 0, err
	}
	if !a.recorded || !b.recorded {
		return 0, errors.New("EventElapsed: event never recorded")
	}
	var ms float64
	err = d.do(func() error {
		if err := b.ev.Synchronize(); err != nil {
			return call("cuEventSynchronize", err)
		}
		var err error
		ms, err = a.ev.Elapsed(b.ev)
		return call("cuEventElapsedTime", err)
	})
	if err != nil {
		return 0, fmt.Errorf("cuda: EventElapsed: %w", err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Sync waits for the work issued so far; a failure there (a fault in a
// kernel, say) becomes the device's error if it has none yet.
func (d *CUDA) Sync() error {
	d.run("Sync", func() error { return call("cuCtxSynchronize", cu.Synchronize()) })
	return d.err
}

// Close frees every buffer and event, the cuBLAS handle and the context.
// Buffers and events of a closed device are dead; closing twice is a no-op.
func (d *CUDA) Close() error {
	if d.ctx == nil {
		return nil
	}
	err := d.do(func() error {
		var errs []error
		for b := range d.buffers {
			if b.ptr != 0 {
				errs = append(errs, call("cuMemFree", cu.MemFree(b.ptr)))
			}
			b.freed, b.ptr = true, 0
		}
		for _, e := range d.events {
			errs = append(errs, call("cuEventDestroy", cu.DestroyEvent(&e.ev)))
		}
		return errors.Join(append(errs, d.blas.destroy())...)
	})
	err = errors.Join(err, call("cuCtxDestroy", d.ctx.Close()))
	d.ctx, d.blas, d.buffers, d.events = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("cuda: Close: %w", err)
	}
	return nil
}
