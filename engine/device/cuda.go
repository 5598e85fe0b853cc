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

	"github.com/batchlab/batchlab/kernels"
)

// CUDA is an NVIDIA GPU, driven through gorgonia.org/cu (the driver API),
// cuBLAS, our kernels (package kernels, loaded from their embedded PTX) and
// a few driver calls of our own (cuda_cgo.go).
//
// Threads. A CUDA context is current on one OS thread at a time, and cuBLAS
// runs in the context current on the calling thread. The device keeps a
// cu.Ctx, which runs one goroutine locked to an OS thread with the context
// current there; every driver call and every cuBLAS call (the handle is made
// there too) goes through ctx.Do as a closure, using cu's package-level
// functions, which return their errors (cu.Ctx's own methods keep only the
// last error). So the context is always current where the call runs, with no
// locking left to the caller. The price is one channel round trip per call;
// where that shows in small-batch steps, CUDA graphs (Grapher) replay a
// whole step with one call.
//
// Streams. Everything runs in order on one compute stream: kernels, cuBLAS,
// memsets, and the synchronous copies, which wait for it. CopyInAsync copies
// on a second stream, so that the next batch's copy overlaps the current
// step's compute; compute issued after it waits for the copy's event.
//
// Errors. Every failing CUDA or cuBLAS call becomes an error naming the
// device's method, the driver or cuBLAS call and its status; compute calls
// record it as the device's first error (see package device), never panic.
// Work runs asynchronously, so a fault inside a kernel (an illegal address,
// say) surfaces at the next Sync, as does bad input the kernels check (a
// label or a gather index out of range), which they report in an error
// block in device memory that Sync copies back.
//
// A CUDA is not safe for concurrent use, like every Device.
type CUDA struct {
	kernelOps
	ctx     *cu.Ctx // nil once closed
	blas    *cublasHandle
	compute cu.Stream
	copies  cu.Stream
	modules map[string]cuModule
	funcs   map[string]cuFunction
	blasWS  cu.DevicePtr         // cuBLAS's workspace (cublasHandle.setWorkspace)
	errDev  cu.DevicePtr         // the kernels' error block (kernelOps.errBlock)
	errHost *[errBlockInts]int32 // its copy, in pinned memory, made by Sync
	info    Info
	traffic Traffic
	buffers map[*cudaBuffer]struct{}    // live buffers, freed by Close
	events  []*cudaEvent                // destroyed by Close
	pinned  map[unsafe.Pointer]struct{} // AllocHost's memory, freed by FreeHost or Close
	graphs  []*cudaGraph                // destroyed by Close
	warming map[string]bool             // the kernels launched, during warmUp only
}

var (
	_ Device      = (*CUDA)(nil)
	_ Grapher     = (*CUDA)(nil)
	_ BatchNormer = (*CUDA)(nil)
	_ Convolver   = (*CUDA)(nil)
)

type cudaBuffer struct {
	bufferBase
	ptr cu.DevicePtr // 0 for an empty buffer
}

type cudaEvent struct {
	dev      *CUDA
	ev       cu.Event
	recorded bool
}

func (*cudaEvent) deviceEvent() {}

var errClosed = errors.New("the device is closed")

// NewCUDA opens CUDA device ordinal: it creates a context on it and a cuBLAS
// handle in that context.
func NewCUDA(ordinal int) (*CUDA, error) {
	if _, err := cublasLib(); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
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
	d := &CUDA{
		ctx: ctx, info: info, modules: map[string]cuModule{}, funcs: map[string]cuFunction{},
		buffers: map[*cudaBuffer]struct{}{}, pinned: map[unsafe.Pointer]struct{}{},
	}
	d.runner = d
	err = ctx.Do(func() error { return d.setup(cu.Device(ordinal)) })
	if err == nil {
		err = d.warmUp()
	}
	if err != nil {
		d.Close() // releases what setup made
		return nil, fmt.Errorf("cuda:%d: %w", ordinal, err)
	}
	return d, nil
}

// setup makes what the device runs with, on the context's thread: the
// cuBLAS handle with its workspace, the two streams, the kernels, the error
// block and the grid cap.
func (d *CUDA) setup(dev cu.Device) error {
	var err error
	if d.blas, err = newCublas(); err != nil {
		return err
	}
	if d.compute, err = cu.MakeStream(cu.DefaultStream); err != nil {
		return call("cuStreamCreate", err)
	}
	if d.copies, err = cu.MakeStream(cu.DefaultStream); err != nil {
		return call("cuStreamCreate", err)
	}
	if err := d.blas.setStream(d.compute); err != nil {
		return err
	}
	// NVIDIA's recommended cuBLAS workspace: 32 MiB on Hopper and newer,
	// 4 MiB before.
	wsBytes := int64(4 << 20)
	if major, err := dev.Attribute(cu.ComputeCapabilityMajor); err == nil && major >= 9 {
		wsBytes = 32 << 20
	}
	if d.blasWS, err = cu.MemAlloc(wsBytes); err != nil {
		return call("cuMemAlloc", err)
	}
	if err := d.blas.setWorkspace(d.blasWS, wsBytes); err != nil {
		return err
	}
	for _, m := range kernels.Modules() {
		// The driver JIT-compiles the compute_80 PTX for this GPU here.
		mod, err := moduleLoad(m.PTX)
		if err != nil {
			return fmt.Errorf("%s.ptx (PTX ISA 7.8 needs a CUDA 11.8 or newer driver): %w", m.Name, err)
		}
		d.modules[m.Name] = mod
	}
	for _, k := range kernels.Kernels() {
		fn, err := d.modules[k.Module].function(k.Name)
		if err != nil {
			return err
		}
		d.funcs[k.Name] = fn
	}
	// The error block lives in device memory, where the kernels' atomics
	// work on every system; Sync copies it into pinned memory, a few bytes
	// in the same wait.
	if d.errDev, err = cu.MemAlloc(errBlockInts * 4); err != nil {
		return call("cuMemAlloc", err)
	}
	if err := cu.MemsetD8(d.errDev, 0, errBlockInts*4); err != nil {
		return call("cuMemsetD8", err)
	}
	d.errBlock = uint64(d.errDev)
	p, err := memHostAlloc(errBlockInts * 4)
	if err != nil {
		return err
	}
	d.errHost = (*[errBlockInts]int32)(p)
	*d.errHost = [errBlockInts]int32{}
	sms, err := dev.Attribute(cu.MultiprocessorCount)
	if err != nil {
		return call("cuDeviceGetAttribute", err)
	}
	threads, err := dev.Attribute(cu.MaxThreadsPerMultiprocessor)
	if err != nil {
		return call("cuDeviceGetAttribute", err)
	}
	d.gridCap = gridCapFor(sms, threads)
	return nil
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

// warmUp runs every primitive once on tiny zeroed buffers, so that the
// work a first use does happens here, outside any stream capture: cuBLAS's
// first call sets itself up and the driver loads each kernel on its first
// launch (lazy loading, the default since CUDA 12.2), and neither may
// happen while a graph is captured. It checks that every kernel ran, so a
// kernel added without a call here fails every NewCUDA.
func (d *CUDA) warmUp() error {
	const n = 4 // a 2×2 matrix, a 4-vector
	var bufs []Buffer
	alloc := func(t DType) Buffer {
		b, err := d.Alloc(t, n)
		if err != nil {
			d.fail(fmt.Errorf("warm-up: %w", err))
			return nil
		}
		bufs = append(bufs, b)
		return b
	}
	var f [8]Buffer // distinct, so that no kernel reads what another argument writes
	for i := range f {
		f[i] = alloc(Float32)
	}
	// Zero: valid labels and indices, and a guard that lets the update run.
	labels, counts, u8, u8Dst, guard := alloc(Int32), alloc(Int32), alloc(Uint8), alloc(Uint8), alloc(Int32)
	if d.failed() {
		return d.err
	}
	d.warming = map[string]bool{}
	d.Gemm(false, false, 2, 2, 2, 1, f[0], f[1], 0, f[2])
	d.Gemm(false, false, 2, 2, 0, 1, f[0], f[1], 0.5, f[2]) // k = 0: cublasSscal
	d.AddBias(f[0], f[1], 2, 2)
	d.ReLU(f[0], f[1], n)
	d.ReLUBackward(f[0], f[1], f[2], n)
	d.SoftmaxCrossEntropy(f[0], f[1], f[2], labels, guard, 0, 2, 2, 1)
	d.CountCorrect(counts, f[2], labels, 0, 2, 2)
	d.ColumnSum(f[0], f[1], 2, 2, 0)
	d.MomentumSGD(f[0], f[1], f[2], guard, n, 0.1, 0.9, 0)
	d.Adam(f[0], f[1], f[2], f[3], guard, n, NewAdamStep(0.001, 0.9, 0.999, 1e-8, 0, 1, false))
	d.NormalizeBytes(f[0], u8, n, 1, 0)
	d.GatherRows(f[0], f[1], labels, 2, 2)
	d.GatherRows(u8Dst, u8, labels, 1, 3) // odd rows: byte by byte
	d.BatchNormTrain(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], 2, 2, 0, 0.1, 1e-5)
	d.BatchNormInfer(f[0], f[1], f[2], f[3], f[4], f[5], 2, 2, 1e-5)
	d.BatchNormBackward(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], 2, 2, 0)
	conv := ConvShape{N: 1, C: 1, H: 2, W: 2, KH: 1, KW: 1, Stride: 1} // a 1×4 col
	d.Im2Col(f[0], f[1], conv)
	d.Col2Im(f[0], f[1], conv)
	d.SwapAxes(f[0], f[1], 1, 2, 2, 1)
	pool := PoolShape{N: 1, C: 1, H: 2, W: 2, K: 1, Stride: 1}
	d.MaxPool(f[0], counts, f[1], pool) // valid argmax indices in counts for the backward
	d.MaxPoolBackward(f[2], f[1], counts, pool)
	err := d.Sync()
	for _, k := range kernels.Kernels() {
		if err == nil && !d.warming[k.Name] {
			err = fmt.Errorf("warm-up: kernel %s was not launched (add a call of it to warmUp)", k.Name)
		}
	}
	d.warming = nil
	for _, b := range bufs {
		d.Free(b)
	}
	if err == nil {
		err = d.Err()
	}
	return err
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
		Driver:            driverInfo(),
	}, nil
}

// driverInfo names the CUDA driver's version and the cuBLAS found, or why
// none was.
func driverInfo() string {
	v, err := driverVersion()
	if err != nil {
		v = "of unknown version (" + err.Error() + ")"
	}
	s := "CUDA driver " + v
	lib, err := cublasLib()
	if err != nil {
		return s + ", " + err.Error()
	}
	return fmt.Sprintf("%s, cuBLAS %s (%s)", s, lib.version, lib.file)
}

// do runs fn on the context's thread.
func (d *CUDA) do(fn func() error) error {
	if d.ctx == nil {
		return errClosed
	}
	return d.ctx.Do(fn)
}

// call names the driver call of gorgonia.org/cu in its error, with the
// driver's description; it runs where the call ran, on the context's thread.
func call(name string, err error) error {
	if err == nil {
		return nil
	}
	return cuResultErr(name, err)
}

// Info describes the device, with the memory free now (0 once closed, in a
// capture, or if the driver cannot tell).
func (d *CUDA) Info() Info {
	info := d.info
	if d.notCapturing("Info") != nil {
		return info
	}
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
	if err := d.notCapturing("Alloc"); err != nil {
		return nil, err
	}
	size, err := allocBytes(t, n)
	if err != nil {
		return nil, err
	}
	b := &cudaBuffer{bufferBase: bufferBase{owner: d, dtype: t, n: n}}
	if n > 0 { // cuMemAlloc refuses 0 bytes
		err := d.do(func() error {
			ptr, err := cu.MemAlloc(size)
			err = call("cuMemAlloc", err)
			if isOutOfMemory(err) {
				free, total, _ := cu.MemInfo()
				return fmt.Errorf("%d bytes asked, %d of %d bytes free: %w (%w)", size, free, total, err, ErrOutOfMemory)
			}
			if err != nil {
				return err
			}
			// Waited for, so that a copy on the other stream cannot race it.
			err = call("cuMemsetD8Async", cu.MemsetD8Async(ptr, 0, size, d.compute))
			if err == nil {
				err = call("cuStreamSynchronize", d.compute.Synchronize())
			}
			if err != nil {
				cu.MemFree(ptr)
				return err
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
// one of this device's live buffers. It does not wait: work issued on b
// must have been synchronized with (Sync, WaitEvent) first. Real drivers
// happen to wait in cuMemFree; the fake driver reports the free instead.
func (d *CUDA) Free(b Buffer) {
	cb, err := d.own("Free", b)
	if err != nil {
		return
	}
	if d.notCapturing("Free") != nil {
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
	return own[*cudaBuffer](op, "CUDA", d, b)
}

// CopyIn is a synchronous host→device copy on the compute stream, after
// the work issued before it: src may be reused on return.
func (d *CUDA) CopyIn(dst Buffer, src []byte) error {
	if err := d.notCapturing("CopyIn"); err != nil {
		return err
	}
	b, err := ownCopy[*cudaBuffer]("CopyIn", "CUDA", d, dst, len(src))
	if err != nil {
		return err
	}
	if len(src) > 0 {
		err := d.do(func() error {
			err := call("cuMemcpyHtoDAsync", cu.MemcpyHtoDAsync(b.ptr, unsafe.Pointer(&src[0]), int64(len(src)), d.compute))
			if err != nil {
				return err
			}
			return call("cuStreamSynchronize", d.compute.Synchronize())
		})
		if err != nil {
			return fmt.Errorf("cuda: CopyIn: %w", err)
		}
	}
	d.traffic.copiedIn(len(src))
	return nil
}

// CopyOut is a synchronous device→host copy, ordered after the work issued
// before it.
func (d *CUDA) CopyOut(dst []byte, src Buffer) error {
	if err := d.notCapturing("CopyOut"); err != nil {
		return err
	}
	b, err := ownCopy[*cudaBuffer]("CopyOut", "CUDA", d, src, len(dst))
	if err != nil {
		return err
	}
	if len(dst) > 0 {
		err := d.do(func() error {
			err := call("cuMemcpyDtoHAsync", cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), b.ptr, int64(len(dst)), d.compute))
			if err != nil {
				return err
			}
			return call("cuStreamSynchronize", d.compute.Synchronize())
		})
		if err != nil {
			return fmt.Errorf("cuda: CopyOut: %w", err)
		}
	}
	d.traffic.copiedOut(len(dst))
	return nil
}

func (d *CUDA) Traffic() Traffic { return d.traffic }

// AllocHost returns page-locked host memory (cuMemHostAlloc): the GPU's DMA
// engine reads it directly, and CopyInAsync from it returns at once.
func (d *CUDA) AllocHost(nbytes int) ([]byte, error) {
	if err := d.notCapturing("AllocHost"); err != nil {
		return nil, err
	}
	if nbytes < 0 {
		return nil, fmt.Errorf("AllocHost: negative size %d", nbytes)
	}
	if nbytes == 0 {
		return []byte{}, nil
	}
	var p unsafe.Pointer
	err := d.do(func() (err error) {
		p, err = memHostAlloc(nbytes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: AllocHost(%d): %w", nbytes, err)
	}
	d.pinned[p] = struct{}{}
	return unsafe.Slice((*byte)(p), nbytes), nil
}

// FreeHost releases memory from AllocHost; it ignores anything else.
func (d *CUDA) FreeHost(b []byte) {
	p := unsafe.Pointer(unsafe.SliceData(b))
	if _, ok := d.pinned[p]; !ok || len(b) == 0 {
		return
	}
	if d.notCapturing("FreeHost") != nil {
		return
	}
	delete(d.pinned, p)
	if err := d.do(func() error { return memFreeHost(p) }); err != nil {
		d.fail(fmt.Errorf("cuda: FreeHost: %w", err))
	}
}

// CopyInAsync copies on the copy stream and records done there; the compute
// stream waits for done (cuStreamWaitEvent), so compute issued afterwards
// sees the data while compute issued before runs alongside the copy. It
// does not wait for that earlier compute: copying into a buffer it still
// reads is the caller's race (double-buffer, as the pinned-async loader
// does). From pageable memory the driver stages the copy before returning.
func (d *CUDA) CopyInAsync(dst Buffer, src []byte, done Event) error {
	if err := d.notCapturing("CopyInAsync"); err != nil {
		return err
	}
	b, err := ownCopy[*cudaBuffer]("CopyInAsync", "CUDA", d, dst, len(src))
	if err != nil {
		return err
	}
	ev, err := d.event("CopyInAsync", done)
	if err != nil {
		return err
	}
	err = d.do(func() error {
		if len(src) > 0 {
			err := cu.MemcpyHtoDAsync(b.ptr, unsafe.Pointer(&src[0]), int64(len(src)), d.copies)
			if err != nil {
				return call("cuMemcpyHtoDAsync", err)
			}
		}
		if err := ev.ev.Record(d.copies); err != nil {
			return call("cuEventRecord", err)
		}
		return call("cuStreamWaitEvent", d.compute.Wait(ev.ev, 0))
	})
	if err != nil {
		return fmt.Errorf("cuda: CopyInAsync: %w", err)
	}
	ev.recorded = true
	d.traffic.copiedIn(len(src))
	return nil
}

// WaitEvent blocks until e has happened (cuEventSynchronize).
func (d *CUDA) WaitEvent(e Event) error {
	if err := d.notCapturing("WaitEvent"); err != nil {
		return err
	}
	ev, err := d.event("WaitEvent", e)
	if err != nil {
		return err
	}
	if err := d.do(func() error { return call("cuEventSynchronize", ev.ev.Synchronize()) }); err != nil {
		return fmt.Errorf("cuda: WaitEvent: %w", err)
	}
	return nil
}

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
			d.run("Gemm", func() error { return call("cuMemsetD8Async", cu.MemsetD8Async(cp, 0, int64(m*n)*4, d.compute)) })
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

// addr and launch make the device a kernelRunner: kernelOps implements the
// kernel primitives with them.

func (d *CUDA) addr(op string, b Buffer) (uint64, error) {
	cb, err := d.own(op, b)
	if err != nil {
		return 0, err
	}
	return uint64(cb.ptr), nil
}

func (d *CUDA) launch(l launch) error {
	fn, ok := d.funcs[l.kernel]
	if !ok {
		return fmt.Errorf("no kernel %q is loaded", l.kernel)
	}
	if d.warming != nil {
		d.warming[l.kernel] = true
	}
	params := l.params()
	return d.do(func() error { return fn.launch(l.grid, blockSize, d.compute, params) })
}

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
		d.run("Zero", func() error { return call("cuMemsetD8Async", cu.MemsetD8Async(cb.ptr, 0, cb.sizeBytes(), d.compute)) })
	}
}

func (d *CUDA) NewEvent() (Event, error) {
	if err := d.notCapturing("NewEvent"); err != nil {
		return nil, err
	}
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
	if err == nil {
		err = d.notCapturing("RecordEvent") // a captured record would time nothing
	}
	if err != nil {
		d.fail(err)
		return
	}
	d.run("RecordEvent", func() error { return call("cuEventRecord", ev.ev.Record(d.compute)) })
	ev.recorded = true
}

// EventElapsed waits for to and returns the GPU time from from to to.
func (d *CUDA) EventElapsed(from, to Event) (time.Duration, error) {
	if err := d.notCapturing("EventElapsed"); err != nil {
		return 0, err
	}
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

// Sync waits for the work issued so far, on both streams; a failure there
// (a fault in a kernel, say) or bad input a kernel reported becomes the
// device's error if it has none yet.
func (d *CUDA) Sync() error {
	if d.notCapturing("Sync") != nil {
		return d.err
	}
	d.run("Sync", func() error {
		if d.errDev != 0 {
			err := cu.MemcpyDtoHAsync(unsafe.Pointer(d.errHost), d.errDev, errBlockInts*4, d.compute)
			if err != nil {
				return call("cuMemcpyDtoHAsync", err)
			}
		}
		return call("cuCtxSynchronize", cu.Synchronize())
	})
	if d.errHost != nil {
		if err := kernelError(*d.errHost); err != nil {
			d.fail(fmt.Errorf("cuda: %w", err))
		}
	}
	return d.err
}

// firstOf is the first of errs that is not nil, saying how many more
// failed: after a fault every later call fails with the same cause, and one
// line naming it is enough.
func firstOf(errs []error) error {
	var first error
	more := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			more++
		}
	}
	if more > 0 {
		return fmt.Errorf("%w (and %d more calls failed)", first, more)
	}
	return first
}

// Close frees every buffer and event, the cuBLAS handle and the context.
// Buffers and events of a closed device are dead; closing twice is a no-op.
func (d *CUDA) Close() error {
	if d.ctx == nil {
		return nil
	}
	err := d.do(func() error {
		var errs []error
		for _, g := range d.graphs {
			errs = append(errs, g.destroy())
		}
		for b := range d.buffers {
			if b.ptr != 0 {
				errs = append(errs, call("cuMemFree", cu.MemFree(b.ptr)))
			}
			b.freed, b.ptr = true, 0
		}
		for _, e := range d.events {
			errs = append(errs, call("cuEventDestroy", cu.DestroyEvent(&e.ev)))
		}
		for p := range d.pinned {
			errs = append(errs, memFreeHost(p))
		}
		if d.errHost != nil {
			errs = append(errs, memFreeHost(unsafe.Pointer(d.errHost)))
		}
		if d.errDev != 0 {
			errs = append(errs, call("cuMemFree", cu.MemFree(d.errDev)))
		}
		for _, m := range d.modules {
			errs = append(errs, m.unload())
		}
		// The handle is bound to the compute stream and uses the
		// workspace: it goes first.
		if d.blas != nil {
			errs = append(errs, d.blas.destroy())
		}
		if d.blasWS != 0 {
			errs = append(errs, call("cuMemFree", cu.MemFree(d.blasWS)))
		}
		for _, s := range []*cu.Stream{&d.compute, &d.copies} {
			if *s != (cu.Stream{}) {
				errs = append(errs, call("cuStreamDestroy", s.Destroy()))
			}
		}
		return firstOf(errs)
	})
	err = firstOf([]error{err, call("cuCtxDestroy", d.ctx.Close())})
	d.ctx, d.blas, d.buffers, d.events, d.pinned, d.graphs, d.errHost, d.errDev, d.blasWS = nil, nil, nil, nil, nil, nil, nil, 0, 0
	if err != nil {
		return fmt.Errorf("cuda: Close: %w", err)
	}
	return nil
}
