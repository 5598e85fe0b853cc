// Package device is the boundary between the engine and the hardware.
//
// Everything the engine does to data goes through the Device interface:
// allocation, host↔device copies (each one counted in Traffic), GEMM and the
// handful of elementwise and row-wise primitives an MLP needs. Layers are
// written once, against this interface.
//
// The CPU device is always compiled: it is the reference other devices'
// training is compared with. Every device, the CPU included, is checked
// against the float64 loops of package devicetest. The CUDA device is
// compiled in the default build only (files tagged //go:build !cpu);
// `-tags cpu` leaves it out.
//
// Error model. A GPU runs work asynchronously, so a failing kernel is only
// noticed later. Every device therefore keeps the first error it meets (a
// CUDA failure, a buffer too small for the shape asked, a wrong dtype) and
// turns every later compute call into a no-op; Sync and Err return that error.
// Calls that hand memory to the caller (Alloc, CopyIn, CopyOut) return their
// error directly.
package device

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"
)

// DType is the element type of a Buffer.
type DType uint8

const (
	Float32 DType = iota
	Uint8
	Int32
)

// Size is the number of bytes one element takes.
func (t DType) Size() int {
	switch t {
	case Uint8:
		return 1
	default:
		return 4
	}
}

func (t DType) String() string {
	switch t {
	case Float32:
		return "float32"
	case Uint8:
		return "uint8"
	case Int32:
		return "int32"
	}
	return fmt.Sprintf("DType(%d)", uint8(t))
}

// Buffer is memory owned by one Device, holding Len elements of DType.
// Buffers of one device must not be passed to another.
type Buffer interface {
	DType() DType
	Len() int
}

// Info describes a device for people and for result files.
type Info struct {
	Kind              string `json:"kind"`               // "cpu" or "cuda"
	Name              string `json:"name"`               // e.g. "NVIDIA H100 80GB HBM3" or the CPU model
	Ordinal           int    `json:"ordinal"`            // CUDA device ordinal; 0 for the CPU
	ComputeCapability string `json:"compute_capability"` // "9.0"; empty on the CPU
	TotalMemory       int64  `json:"total_memory"`       // bytes
	FreeMemory        int64  `json:"free_memory"`        // bytes, when the device reports it
	Threads           int    `json:"threads"`            // CPU worker threads; 0 on a GPU
	// Driver names the driver and libraries the device runs on, e.g.
	// "CUDA driver 13.0, cuBLAS 13.0.2 (libcublas.so.13)"; empty on the CPU.
	Driver string `json:"driver"`
}

// legacyInfo is Info as results were written before its JSON keys became
// snake_case (2026-12-01): its field names, the same fields in the same
// order, so that Info(legacyInfo{…}) converts.
type legacyInfo struct {
	Kind              string
	Name              string
	Ordinal           int
	ComputeCapability string
	TotalMemory       int64
	FreeMemory        int64
	Threads           int
	Driver            string
}

// UnmarshalJSON reads Info's keys, and the older names where a key is
// absent, so that saved studies and grids keep their device's memory.
func (i *Info) UnmarshalJSON(b []byte) error {
	var old legacyInfo
	if err := json.Unmarshal(b, &old); err != nil {
		return err
	}
	*i = Info(old)
	type keyed Info // without this method
	return json.Unmarshal(b, (*keyed)(i))
}

func (i Info) String() string {
	s := fmt.Sprintf("%s:%d %s", i.Kind, i.Ordinal, i.Name)
	if i.ComputeCapability != "" {
		s += ", compute capability " + i.ComputeCapability
	}
	if i.TotalMemory > 0 {
		s += fmt.Sprintf(", %.1f GiB", float64(i.TotalMemory)/(1<<30))
	}
	if i.Threads > 0 {
		s += fmt.Sprintf(", %d threads", i.Threads)
	}
	if i.Driver != "" {
		s += ", " + i.Driver
	}
	return s
}

// Traffic counts the data that crossed between host and device.
type Traffic struct {
	HostToDeviceBytes  int64
	HostToDeviceCopies int64
	DeviceToHostBytes  int64
	DeviceToHostCopies int64
}

// Sub returns t - u, the traffic between two readings.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{
		HostToDeviceBytes:  t.HostToDeviceBytes - u.HostToDeviceBytes,
		HostToDeviceCopies: t.HostToDeviceCopies - u.HostToDeviceCopies,
		DeviceToHostBytes:  t.DeviceToHostBytes - u.DeviceToHostBytes,
		DeviceToHostCopies: t.DeviceToHostCopies - u.DeviceToHostCopies,
	}
}

// Event is a point in a device's stream of work, used to time it. Only the
// devices of this package make events: the unexported method keeps any
// other value from passing for one.
type Event interface{ deviceEvent() }

// Device is a place where tensors live and primitives run. All matrices are
// row-major and contiguous; rows/cols/n arguments say how much of a buffer a
// call uses (a buffer may be larger, e.g. sized for the largest batch).
type Device interface {
	Info() Info

	// Alloc returns a zeroed buffer of n elements.
	Alloc(t DType, n int) (Buffer, error)
	// Free releases a buffer; using it afterwards is an error.
	Free(b Buffer)
	// CopyIn copies host bytes into the start of dst (host→device).
	CopyIn(dst Buffer, src []byte) error
	// CopyOut copies the start of src into host bytes (device→host).
	CopyOut(dst []byte, src Buffer) error
	// Traffic reports the copies made so far.
	Traffic() Traffic

	// AllocHost returns host memory the device copies from fastest:
	// page-locked (pinned) on a GPU, ordinary memory on the CPU. Release it
	// with FreeHost.
	AllocHost(nbytes int) ([]byte, error)
	FreeHost(b []byte)
	// CopyInAsync starts copying src into the start of dst on the device's
	// copy stream and returns at once. It records done when the copy has
	// finished, and compute issued after the call waits for it; the host
	// must not change src before WaitEvent(done) returns. src should come
	// from AllocHost: from pageable memory a GPU copies synchronously. The
	// CPU device copies at once, synchronously.
	CopyInAsync(dst Buffer, src []byte, done Event) error
	// WaitEvent blocks the host until e has happened.
	WaitEvent(e Event) error

	// Gemm computes C = alpha·op(A)·op(B) + beta·C, where op(A) is m×k,
	// op(B) is k×n and C is m×n; op transposes when trans is true.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer)
	// AddBias adds bias[j] to every x[i,j] of a rows×cols x.
	AddBias(x, bias Buffer, rows, cols int)
	// ReLU sets y[i] = max(x[i], 0) for i < n; y and x may be the same buffer.
	ReLU(y, x Buffer, n int)
	// ReLUBackward sets dx[i] = dy[i] if y[i] > 0, else 0; dx may be dy.
	ReLUBackward(dx, dy, y Buffer, n int)
	// SoftmaxCrossEntropy takes rows×cols logits and int32 labels. It writes
	// the batch's mean loss, mean_i -log softmax(logits_i)[label_i], into
	// losses[slot], and, unless grad is nil, grad = gradScale·(softmax − onehot).
	// Unless guard is nil, a non-finite mean loss sets the int32 guard[0] to
	// slot+1 (in a graph replay the slot with its base added) if it is
	// still 0: the guard keeps the first diverging step (see MomentumSGD).
	SoftmaxCrossEntropy(grad, losses, logits, labels, guard Buffer, slot, rows, cols int, gradScale float32)
	// CountCorrect writes into the int32 counts[slot] how many of the rows
	// have their largest logit (first one on ties) at their label.
	CountCorrect(counts, logits, labels Buffer, slot, rows, cols int)
	// ColumnSum sets dst[j] = beta·dst[j] + Σ_i src[i,j] for a rows×cols src.
	ColumnSum(dst, src Buffer, rows, cols int, beta float32)
	// MomentumSGD updates n parameters the way PyTorch's SGD does:
	// v = momentum·v + (g + weightDecay·w); w = w − lr·v. It does nothing
	// when guard is not nil and the int32 guard[0] is not 0: once a loss
	// was not finite, the parameters keep the values that gave it, decided
	// on the device, with no copy to the host (graphs included: a replay
	// reads the guard).
	MomentumSGD(w, grad, velocity, guard Buffer, n int, lr, momentum, weightDecay float32)
	// Adam updates n parameters the way PyTorch's Adam and AdamW do, with
	// the step's scalars in s (see NewAdamStep):
	// g' = g + s.L2·w; w' = s.Decay·w; m = β1·m + (1−β1)·g';
	// v = β2·v + (1−β2)·g'²; w = w' − s.StepSize·m / (√v / s.BiasCorrection2Sqrt + ε).
	// The guard is honoured as by MomentumSGD.
	Adam(w, grad, m, v, guard Buffer, n int, s AdamStep)
	// NormalizeBytes sets the float32 dst[i] = scale·float32(src[i]) + shift
	// for the uint8 src, i < n.
	NormalizeBytes(dst, src Buffer, n int, scale, shift float32)
	// GatherRows sets dst[i,:] = src[idx[i],:] for i < rows, rows of rowLen
	// elements; dst and src have the same dtype, idx is int32.
	GatherRows(dst, src, idx Buffer, rows, rowLen int)
	// Zero sets every element of b to zero.
	Zero(b Buffer)

	// NewEvent makes an event; RecordEvent places it after the work issued so
	// far; EventElapsed is the time between two recorded events (it waits for
	// the later one). Events live as long as the device.
	NewEvent() (Event, error)
	RecordEvent(e Event)
	EventElapsed(from, to Event) (time.Duration, error)

	// Sync waits for all issued work and returns the device's first error.
	Sync() error
	// Err returns the first error without waiting.
	Err() error
	// Close releases everything the device holds.
	Close() error
}

// Element is a Go type a Buffer can hold.
type Element interface{ ~float32 | ~uint8 | ~int32 }

// Bytes views a slice of elements as its bytes, without copying.
func Bytes[T Element](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero)))
}

// Upload copies a host slice into the start of dst.
func Upload[T Element](d Device, dst Buffer, src []T) error {
	if err := checkHostType[T](dst); err != nil {
		return err
	}
	return d.CopyIn(dst, Bytes(src))
}

// Download copies the start of src into a host slice.
func Download[T Element](d Device, dst []T, src Buffer) error {
	if err := checkHostType[T](src); err != nil {
		return err
	}
	return d.CopyOut(Bytes(dst), src)
}

func checkHostType[T Element](b Buffer) error {
	var zero T
	var want DType
	switch any(zero).(type) {
	case float32:
		want = Float32
	case uint8:
		want = Uint8
	case int32:
		want = Int32
	}
	if b.DType() != want {
		return fmt.Errorf("device: host slice of %v does not match a %v buffer", want, b.DType())
	}
	return nil
}

// Open returns the device a name selects: "cpu", or "cuda" / "cuda:N" in a
// build with the CUDA device. "" picks the default device (see Default).
func Open(name string) (Device, error) {
	if name == "" {
		name = Default()
	}
	if name == "cpu" {
		return NewCPU(), nil
	}
	return openAccelerator(name)
}
