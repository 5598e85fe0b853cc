//go:build emu

package device

// The emulated CUDA device: built only with the emu tag (make emu-test).

/*
#cgo CXXFLAGS: -std=c++20 -O2 -Wall
#cgo LDFLAGS: -lstdc++ -lpthread
#include <stdint.h>
#include <stdlib.h>
int emu_arity(const char *name);
int emu_launch(const char *name, unsigned grid, unsigned block, const uint64_t *slots, int nslots, char *msg, int msglen);
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Emulated is a Device whose kernel primitives run the CUDA kernels of
// package kernels on the host, compiled with kernels/emu/cuda_emu.h (one OS
// thread per CUDA thread). It shares with the CUDA device everything above
// the driver (kernelOps: argument checks, grid sizes, argument packing, the
// error block, graph slots), so devicetest.Run against it tests the
// kernels and that code without a GPU. The rest is the CPU's: memory is the
// C heap (kernels get its addresses, which Go's collector does not move),
// copies are memcpy, Gemm is gonum's, and graphs are recorded calls.
type Emulated struct {
	kernelOps
	traffic   Traffic
	buffers   map[*emuBuffer]struct{}
	errHost   *[errBlockInts]int32 // C memory: the kernels write it
	recording *[]func() error      // the graph being captured, if any
	graphs    []*emuGraph
	blas      gonum.Implementation
}

var (
	_ Device      = (*Emulated)(nil)
	_ Grapher     = (*Emulated)(nil)
	_ BatchNormer = (*Emulated)(nil)
)

// NewEmulated returns an emulated device whose grid-stride launches have at
// most gridCap blocks: a small cap makes every thread loop, as on a big
// input on a GPU.
func NewEmulated(gridCap int) *Emulated {
	e := &Emulated{buffers: map[*emuBuffer]struct{}{}}
	e.runner, e.gridCap = e, gridCap
	e.errHost = (*[errBlockInts]int32)(C.calloc(errBlockInts, 4))
	e.errBlock = uint64(uintptr(unsafe.Pointer(e.errHost)))
	return e
}

// EmulatedKernelArity is the parameter count of a kernel compiled into the
// emulation; -1 if it is not there.
func EmulatedKernelArity(name string) int {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return int(C.emu_arity(cname))
}

type emuBuffer struct {
	dev   *Emulated
	dtype DType
	n     int
	p     unsafe.Pointer // C memory; nil when empty
	freed bool
}

func (b *emuBuffer) DType() DType { return b.dtype }
func (b *emuBuffer) Len() int     { return b.n }

// bytes views the buffer's memory.
func (b *emuBuffer) bytes() []byte {
	if b.p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(b.p), b.n*b.dtype.Size())
}

func (b *emuBuffer) f32() []float32 {
	if b.p == nil {
		return nil
	}
	return unsafe.Slice((*float32)(b.p), b.n)
}

func (e *Emulated) Info() Info {
	return Info{Kind: "emulated-cuda", Name: "CUDA kernels on host threads"}
}

func (e *Emulated) Alloc(t DType, n int) (Buffer, error) {
	if err := e.notCapturing("Alloc"); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("Alloc: negative length %d", n)
	}
	if t > Int32 {
		return nil, fmt.Errorf("Alloc: unknown dtype %v", t)
	}
	b := &emuBuffer{dev: e, dtype: t, n: n}
	if n > 0 {
		b.p = C.calloc(C.size_t(n), C.size_t(t.Size()))
		if b.p == nil {
			return nil, fmt.Errorf("Alloc(%v, %d): calloc failed: %w", t, n, ErrOutOfMemory)
		}
	}
	e.buffers[b] = struct{}{}
	return b, nil
}

func (e *Emulated) Free(b Buffer) {
	eb, ok := b.(*emuBuffer)
	if !ok || eb.dev != e || eb.freed {
		return
	}
	if err := e.notCapturing("Free"); err != nil {
		e.fail(err)
		return
	}
	delete(e.buffers, eb)
	C.free(eb.p)
	eb.p, eb.freed = nil, true
}

func (e *Emulated) own(op string, b Buffer) (*emuBuffer, error) {
	eb, ok := b.(*emuBuffer)
	if !ok || eb.dev != e {
		return nil, fmt.Errorf("%s: buffer %T does not belong to this emulated device", op, b)
	}
	if eb.freed {
		return nil, fmt.Errorf("%s: buffer used after Free", op)
	}
	return eb, nil
}

func (e *Emulated) CopyIn(dst Buffer, src []byte) error {
	if err := e.notCapturing("CopyIn"); err != nil {
		return err
	}
	if err := checkCopy("CopyIn", dst, len(src)); err != nil {
		return err
	}
	b, err := e.own("CopyIn", dst)
	if err != nil {
		return err
	}
	copy(b.bytes(), src)
	e.traffic.HostToDeviceBytes += int64(len(src))
	e.traffic.HostToDeviceCopies++
	return nil
}

func (e *Emulated) CopyOut(dst []byte, src Buffer) error {
	if err := e.notCapturing("CopyOut"); err != nil {
		return err
	}
	if err := checkCopy("CopyOut", src, len(dst)); err != nil {
		return err
	}
	b, err := e.own("CopyOut", src)
	if err != nil {
		return err
	}
	copy(dst, b.bytes())
	e.traffic.DeviceToHostBytes += int64(len(dst))
	e.traffic.DeviceToHostCopies++
	return nil
}

func (e *Emulated) Traffic() Traffic { return e.traffic }

func (e *Emulated) AllocHost(nbytes int) ([]byte, error) {
	if nbytes < 0 {
		return nil, fmt.Errorf("AllocHost: negative size %d", nbytes)
	}
	return make([]byte, nbytes), nil
}

func (e *Emulated) FreeHost([]byte) {}

// CopyInAsync copies at once, like the CPU's.
func (e *Emulated) CopyInAsync(dst Buffer, src []byte, done Event) error {
	if _, ok := done.(*emuEvent); !ok {
		return fmt.Errorf("CopyInAsync: event %T does not belong to the emulated device", done)
	}
	if err := e.CopyIn(dst, src); err != nil {
		return err
	}
	e.RecordEvent(done)
	return nil
}

func (e *Emulated) WaitEvent(ev Event) error {
	if _, ok := ev.(*emuEvent); !ok {
		return fmt.Errorf("WaitEvent: event %T does not belong to the emulated device", ev)
	}
	return nil
}

// exec runs fn now, or records it into the graph being captured.
func (e *Emulated) exec(op string, fn func() error) {
	if e.recording != nil {
		*e.recording = append(*e.recording, fn)
		return
	}
	if err := fn(); err != nil {
		e.fail(fmt.Errorf("%s: %w", op, err))
	}
}

// addr and launch make the device a kernelRunner.

func (e *Emulated) addr(op string, b Buffer) (uint64, error) {
	eb, err := e.own(op, b)
	if err != nil {
		return 0, err
	}
	return uint64(uintptr(eb.p)), nil
}

func (e *Emulated) launch(l launch) error {
	slots := l.slots()
	run := func() error {
		name := C.CString(l.kernel)
		defer C.free(unsafe.Pointer(name))
		var slot *C.uint64_t
		if len(slots) > 0 {
			slot = (*C.uint64_t)(unsafe.Pointer(&slots[0]))
		}
		var msg [512]C.char
		if C.emu_launch(name, C.uint(l.grid), blockSize, slot, C.int(len(slots)), &msg[0], C.int(len(msg))) != 0 {
			return errors.New(C.GoString(&msg[0]))
		}
		return nil
	}
	if e.recording != nil {
		*e.recording = append(*e.recording, func() error {
			if err := run(); err != nil {
				return fmt.Errorf("%s: %w", l.kernel, err)
			}
			return nil
		})
		return nil
	}
	return run()
}

func (e *Emulated) bufs(op string, sizes []int, args ...arg) ([]*emuBuffer, bool) {
	if e.failed() {
		return nil, false
	}
	if err := checkArgs(op, sizes, args...); err != nil {
		e.fail(err)
		return nil, false
	}
	out := make([]*emuBuffer, len(args))
	for i, a := range args {
		b, err := e.own(op, a.buf)
		if err != nil {
			e.fail(err)
			return nil, false
		}
		out[i] = b
	}
	return out, true
}

// Gemm is gonum's SGEMM, as on the CPU device: the emulation is about our
// kernels, not cuBLAS.
func (e *Emulated) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) {
	bs, ok := e.bufs("Gemm", []int{m, n, k}, f32("A", a, m*k), f32("B", b, k*n), f32("C", c, m*n))
	if !ok || m == 0 || n == 0 {
		return
	}
	e.exec("Gemm", func() error {
		cs := bs[2].f32()[:m*n]
		if k == 0 {
			for i := range cs {
				cs[i] *= beta
				if beta == 0 {
					cs[i] = 0
				}
			}
			return nil
		}
		tA, lda := blas.NoTrans, k
		if transA {
			tA, lda = blas.Trans, m
		}
		tB, ldb := blas.NoTrans, n
		if transB {
			tB, ldb = blas.Trans, k
		}
		e.blas.Sgemm(tA, tB, m, n, k, alpha, bs[0].f32()[:m*k], lda, bs[1].f32()[:k*n], ldb, beta, cs, n)
		return nil
	})
}

func (e *Emulated) Zero(b Buffer) {
	if e.failed() {
		return
	}
	eb, err := e.own("Zero", b)
	if err != nil {
		e.fail(err)
		return
	}
	e.exec("Zero", func() error { clear(eb.bytes()); return nil })
}

type emuEvent struct{ at time.Time }

func (*emuEvent) deviceEvent() {}

func (e *Emulated) NewEvent() (Event, error) {
	if err := e.notCapturing("NewEvent"); err != nil {
		return nil, err
	}
	return &emuEvent{}, nil
}

func (e *Emulated) RecordEvent(ev Event) {
	x, ok := ev.(*emuEvent)
	if !ok {
		e.fail(fmt.Errorf("RecordEvent: event %T does not belong to the emulated device", ev))
		return
	}
	if err := e.notCapturing("RecordEvent"); err != nil {
		e.fail(err)
		return
	}
	x.at = time.Now()
}

func (e *Emulated) EventElapsed(from, to Event) (time.Duration, error) {
	a, ok1 := from.(*emuEvent)
	b, ok2 := to.(*emuEvent)
	if !ok1 || !ok2 {
		return 0, errors.New("EventElapsed: events do not belong to the emulated device")
	}
	if a.at.IsZero() || b.at.IsZero() {
		return 0, errors.New("EventElapsed: event never recorded")
	}
	return b.at.Sub(a.at), nil
}

// Sync reads the kernels' error block, as the CUDA device's does.
func (e *Emulated) Sync() error {
	if err := e.notCapturing("Sync"); err != nil {
		e.fail(err)
	}
	if e.errHost != nil {
		if err := kernelError(*e.errHost); err != nil {
			e.fail(err)
		}
	}
	return e.err
}

// Close frees every buffer and graph; closing twice is a no-op.
func (e *Emulated) Close() error {
	for b := range e.buffers {
		C.free(b.p)
		b.p, b.freed = nil, true
	}
	for _, g := range e.graphs {
		C.free(unsafe.Pointer(g.base))
		g.ops, g.base = nil, nil
	}
	C.free(unsafe.Pointer(e.errHost))
	e.buffers, e.graphs, e.errHost = map[*emuBuffer]struct{}{}, nil, nil
	return nil
}

// emuGraph is a recorded sequence of calls and the int their slots are
// offset by, which the recorded kernels read when they run.
type emuGraph struct {
	dev   *Emulated
	ops   []func() error
	base  *int32 // C memory
	slots []slotUse
}

func (*emuGraph) deviceGraph() {}

func (e *Emulated) Capture(fn func()) (Graph, error) {
	if e.failed() {
		return nil, e.err
	}
	if e.capture != nil {
		return nil, errors.New("Capture: already capturing (graphs do not nest)")
	}
	g := &emuGraph{dev: e, base: (*int32)(C.calloc(1, 4))}
	e.capture = &capture{base: uint64(uintptr(unsafe.Pointer(g.base)))}
	e.recording = &g.ops
	fn()
	g.slots = e.capture.slots
	e.capture, e.recording = nil, nil
	if e.err != nil {
		C.free(unsafe.Pointer(g.base))
		return nil, e.err
	}
	e.graphs = append(e.graphs, g)
	return g, nil
}

func (e *Emulated) Launch(g Graph, base int) {
	if e.failed() {
		return
	}
	eg, ok := g.(*emuGraph)
	if !ok || eg.dev != e || eg.base == nil {
		e.fail(fmt.Errorf("Launch: graph %T does not belong to this emulated device", g))
		return
	}
	if err := e.notCapturing("Launch"); err != nil {
		e.fail(err)
		return
	}
	if err := checkReplay(eg.slots, base); err != nil {
		e.fail(err)
		return
	}
	*eg.base = int32(base)
	for _, op := range eg.ops {
		if err := op(); err != nil {
			e.fail(fmt.Errorf("Launch: %w", err))
			return
		}
	}
}
