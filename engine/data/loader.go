package data

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
	"unsafe"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// Permutation is the sample order of one epoch: a shuffle of 0..n-1 drawn
// from a PCG stream keyed by (seed, epoch), so any epoch's order can be
// recomputed without replaying the ones before it.
func Permutation(n int, seed uint64, epoch int) []int32 {
	r := rand.New(rand.NewPCG(seed, uint64(epoch)))
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// Loader moves batches of a dataset to a device under one transfer
// Strategy. Every strategy hands the model the same numbers: pixels
// normalized by Normalize (on the host or, for uint8 and resident, on the
// device with the same formula) and int32 labels.
type Loader interface {
	// Load puts the samples at indices on the device and returns the
	// buffers holding them: x, len(indices) rows of float32 pixels, and
	// labels, len(indices) int32. They stay valid until the next Load.
	Load(indices []int32) (x, labels device.Buffer, err error)
	// Prefetch announces the indices of the next Load, so that the loader
	// can start moving them while the device works on the current batch;
	// call it after issuing that work. Only pinned-async acts on it.
	Prefetch(indices []int32) error
	Strategy() Strategy
	// Trace sends a span for every copy and device kernel of the loader,
	// and for assembling batches on the host, to tl (nil stops it).
	Trace(tl *trace.Timeline)
	// Close frees the loader's device and pinned memory.
	Close()
}

// loaderStats counts a loader's batches and host→device traffic (the
// tests hold each strategy's traffic to it).
type loaderStats struct {
	Batches int64 `json:"batches"`
	Samples int64 `json:"samples"`
	Bytes   int64 `json:"bytes"` // host→device, for the batches
	Copies  int64 `json:"copies"`
	// Uploaded once at construction: the dataset, for resident.
	SetupBytes  int64 `json:"setup_bytes"`
	SetupCopies int64 `json:"setup_copies"`
}

// loader implements every strategy: they differ only in where the batch is
// staged, how it is copied and what the device does with it.
type loader struct {
	d       device.Device
	ds      *Dataset
	s       Strategy
	maxRows int
	stats   loaderStats
	tl      *trace.Timeline

	slots   []*slot // two for pinned-async (double buffering), else one
	next    int     // the slot pinned-async stages the next batch in
	pending *slot   // staged by Prefetch for the next Load

	images, labels device.Buffer // resident: the whole dataset
}

// slot is one batch's staging on the host and its buffers on the device.
type slot struct {
	i      int
	pixels []byte // host: float32 or uint8 pixels; AllocHost memory when pinned
	ints   []byte // host: int32 labels, or for resident the int32 indices
	pinned bool

	x   device.Buffer // float32 pixels, what Load returns
	raw device.Buffer // uint8 pixels before NormalizeBytes (uint8 dtype)
	y   device.Buffer // int32 labels
	idx device.Buffer // resident: int32 indices

	// pinned-async: copied is recorded when the slot's copies have
	// finished; released after the work reading its device buffers was
	// issued. The slot is refilled only once both have passed.
	copied, released     device.Event
	copiedOK, releasedOK bool
	indices              []int32 // the batch staged here
}

// NewLoader returns a loader of batches of up to maxRows samples of ds on d,
// moving them by strategy s (the zero Strategy is pageable float32).
func NewLoader(d device.Device, ds *Dataset, maxRows int, s Strategy) (Loader, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.resolved()
	if maxRows <= 0 {
		return nil, fmt.Errorf("loader: batch size must be positive, got %d", maxRows)
	}
	l := &loader{d: d, ds: ds, s: s, maxRows: maxRows}
	if err := l.alloc(); err != nil {
		l.Close()
		return nil, fmt.Errorf("loader (%s): %w", s, err)
	}
	return l, nil
}

func (l *loader) alloc() error {
	d, s, rows, f := l.d, l.s, l.maxRows, l.ds.Features()
	n := 1
	if s.Mode == PinnedAsync {
		n = 2
	}
	for i := range n {
		sl := &slot{i: i, pinned: s.Mode == Pinned || s.Mode == PinnedAsync}
		l.slots = append(l.slots, sl)
		var err error
		if s.Mode != Resident {
			if sl.pixels, err = l.hostAlloc(sl.pinned, rows*f*s.DType.Size()); err != nil {
				return err
			}
		}
		if sl.ints, err = l.hostAlloc(sl.pinned, 4*rows); err != nil {
			return err
		}
		if sl.x, err = d.Alloc(device.Float32, rows*f); err != nil {
			return err
		}
		if s.DType == device.Uint8 {
			if sl.raw, err = d.Alloc(device.Uint8, rows*f); err != nil {
				return err
			}
		}
		if sl.y, err = d.Alloc(device.Int32, rows); err != nil {
			return err
		}
		if s.Mode == Resident {
			if sl.idx, err = d.Alloc(device.Int32, rows); err != nil {
				return err
			}
		}
		if s.Mode == PinnedAsync {
			if sl.copied, err = d.NewEvent(); err != nil {
				return err
			}
			if sl.released, err = d.NewEvent(); err != nil {
				return err
			}
		}
	}
	if s.Mode == Resident {
		return l.upload()
	}
	return nil
}

// hostAlloc returns n bytes of staging, pinned or from Go's heap; the Go
// memory is allocated as int32 so that float32 and int32 views are aligned.
func (l *loader) hostAlloc(pinned bool, n int) ([]byte, error) {
	if !pinned {
		return device.Bytes(make([]int32, (n+3)/4))[:n:n], nil
	}
	b, err := l.d.AllocHost(n)
	if err == nil && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		l.d.FreeHost(b)
		return nil, fmt.Errorf("AllocHost(%d) returned memory not aligned for float32", n)
	}
	return b, err
}

// upload puts the whole dataset on the device for resident: the images as
// they are stored (uint8) and the labels as int32.
func (l *loader) upload() error {
	var err error
	if l.images, err = l.d.Alloc(device.Uint8, len(l.ds.Images)); err != nil {
		return fmt.Errorf("the dataset (%d bytes) does not fit: %w", len(l.ds.Images), err)
	}
	if l.labels, err = l.d.Alloc(device.Int32, l.ds.Len()); err != nil {
		return err
	}
	labels := make([]int32, l.ds.Len())
	for i, v := range l.ds.Labels {
		labels[i] = int32(v)
	}
	if err := device.Upload(l.d, l.images, l.ds.Images); err != nil {
		return err
	}
	if err := device.Upload(l.d, l.labels, labels); err != nil {
		return err
	}
	l.stats.SetupBytes, l.stats.SetupCopies = int64(len(l.ds.Images)+4*len(labels)), 2
	return nil
}

// spanArgs is a span's argument, made only when tracing: an untraced Load
// allocates nothing.
func (l *loader) spanArgs(key string, v int) map[string]any {
	if l.tl == nil {
		return nil
	}
	return map[string]any{key: v}
}

func (l *loader) Strategy() Strategy       { return l.s }
func (l *loader) Trace(tl *trace.Timeline) { l.tl = tl }
func (l *loader) errorf(format string, a ...any) error {
	return fmt.Errorf("loader (%s): "+format, append([]any{l.s}, a...)...)
}

func (l *loader) check(indices []int32) error {
	if len(indices) > l.maxRows {
		return l.errorf("batch of %d exceeds the %d it was sized for", len(indices), l.maxRows)
	}
	for _, idx := range indices {
		if idx < 0 || int(idx) >= l.ds.Len() {
			return l.errorf("sample %d outside %s's %d", idx, l.ds.Name, l.ds.Len())
		}
	}
	return nil
}

func (l *loader) Load(indices []int32) (x, labels device.Buffer, err error) {
	if err := l.check(indices); err != nil {
		return nil, nil, err
	}
	var s *slot
	switch l.s.Mode {
	case PinnedAsync:
		if s = l.pending; s == nil || !slices.Equal(s.indices, indices) {
			if s, err = l.stageAsync(indices); err != nil {
				return nil, nil, err
			}
		}
		l.pending = nil
		// The work on the previous batch, which read the other slot, has
		// all been issued by now: once this event passes, it may be refilled.
		other := l.slots[1-s.i]
		l.d.RecordEvent(other.released)
		other.releasedOK = true
	case Resident:
		s = l.slots[0]
		if err := l.stageIndices(s, indices); err != nil {
			return nil, nil, err
		}
	default:
		s = l.slots[0]
		if err := l.stageSync(s, indices); err != nil {
			return nil, nil, err
		}
	}
	rows, f := len(indices), l.ds.Features()
	if l.s.Mode == Resident {
		m := l.tl.Mark()
		l.d.GatherRows(s.raw, l.images, s.idx, rows, f)
		l.d.GatherRows(s.y, l.labels, s.idx, rows, 1)
		l.tl.Span(trace.Kernels, "gather", m, l.tl.Mark(), l.spanArgs("rows", rows))
	}
	if l.s.DType == device.Uint8 {
		m := l.tl.Mark()
		l.d.NormalizeBytes(s.x, s.raw, rows*f, pixelScale, pixelShift)
		l.tl.Span(trace.Kernels, "normalize", m, l.tl.Mark(), l.spanArgs("rows", rows))
	}
	l.stats.Batches++
	l.stats.Samples += int64(rows)
	return s.x, s.y, nil
}

func (l *loader) Prefetch(indices []int32) error {
	if l.s.Mode != PinnedAsync {
		return nil
	}
	if err := l.check(indices); err != nil {
		return err
	}
	var err error
	l.pending, err = l.stageAsync(indices)
	return err
}

// stageSync assembles the batch in the slot's staging and copies it
// synchronously (pageable and pinned).
func (l *loader) stageSync(s *slot, indices []int32) error {
	n, rows := l.assemble(s, indices)
	m0 := l.tl.Mark()
	if err := l.copyIn(s.pixelsDst(), s.pixels[:n]); err != nil {
		return l.errorf("copying pixels: %w", err)
	}
	m1 := l.tl.Mark()
	if err := l.copyIn(s.y, s.ints[:4*rows]); err != nil {
		return l.errorf("copying labels: %w", err)
	}
	l.tl.Span(trace.Copies, "copy pixels", m0, m1, l.spanArgs("bytes", n))
	l.tl.Span(trace.Copies, "copy labels", m1, l.tl.Mark(), l.spanArgs("bytes", 4*rows))
	return nil
}

// stageAsync assembles the batch in the next pinned slot and starts its
// copies on the copy stream (pinned-async). A batch staged by Prefetch and
// not loaded is replaced in the same slot: the other one is in use.
func (l *loader) stageAsync(indices []int32) (*slot, error) {
	if l.pending != nil {
		l.next = l.pending.i
	}
	s := l.slots[l.next]
	l.next = 1 - l.next
	if s.copiedOK {
		if err := l.d.WaitEvent(s.copied); err != nil {
			return nil, l.errorf("waiting for the staging buffer: %w", err)
		}
	}
	if s.releasedOK {
		if err := l.d.WaitEvent(s.released); err != nil {
			return nil, l.errorf("waiting for the device buffers: %w", err)
		}
	}
	n, rows := l.assemble(s, indices)
	m := l.tl.Mark()
	if err := l.d.CopyInAsync(s.pixelsDst(), s.pixels[:n], s.copied); err != nil {
		return nil, l.errorf("copying pixels: %w", err)
	}
	if err := l.d.CopyInAsync(s.y, s.ints[:4*rows], s.copied); err != nil {
		return nil, l.errorf("copying labels: %w", err)
	}
	l.count(n)
	l.count(4 * rows)
	s.copiedOK = true
	s.indices = append(s.indices[:0], indices...)
	// From issue to completion: the copy may wait for the one before it.
	l.tl.Span(trace.Copies, "copy batch (async)", m, s.copied, l.spanArgs("bytes", n+4*rows))
	return s, nil
}

// stageIndices copies the batch's indices for the device to gather (resident).
func (l *loader) stageIndices(s *slot, indices []int32) error {
	copy(int32s(s.ints), indices)
	m := l.tl.Mark()
	if err := l.copyIn(s.idx, s.ints[:4*len(indices)]); err != nil {
		return l.errorf("copying indices: %w", err)
	}
	l.tl.Span(trace.Copies, "copy indices", m, l.tl.Mark(), l.spanArgs("bytes", 4*len(indices)))
	return nil
}

func (s *slot) pixelsDst() device.Buffer {
	if s.raw != nil {
		return s.raw
	}
	return s.x
}

func (l *loader) copyIn(dst device.Buffer, src []byte) error {
	if err := l.d.CopyIn(dst, src); err != nil {
		return err
	}
	l.count(len(src))
	return nil
}

// count adds one copy of n bytes to the stats.
func (l *loader) count(n int) {
	l.stats.Bytes += int64(n)
	l.stats.Copies++
}

// assemble gathers the batch's pixels (normalized to float32, or raw bytes)
// and int32 labels into the slot's host staging; it returns the pixel bytes
// and the rows.
func (l *loader) assemble(s *slot, indices []int32) (n, rows int) {
	start := time.Now()
	f, rows := l.ds.Features(), len(indices)
	labels := int32s(s.ints)
	if l.s.DType == device.Uint8 {
		for i, idx := range indices {
			copy(s.pixels[i*f:(i+1)*f], l.ds.Images[int(idx)*f:(int(idx)+1)*f])
		}
		n = rows * f
	} else {
		pix := float32s(s.pixels)
		for i, idx := range indices {
			dst := pix[i*f : (i+1)*f]
			for j, v := range l.ds.Images[int(idx)*f : (int(idx)+1)*f] {
				dst[j] = Normalize(v)
			}
		}
		n = 4 * rows * f
	}
	for i, idx := range indices {
		labels[i] = int32(l.ds.Labels[idx])
	}
	l.tl.HostSpan("assemble", start, time.Now(), l.spanArgs("rows", rows))
	return n, rows
}

func (l *loader) Close() {
	for _, s := range l.slots {
		for _, b := range []device.Buffer{s.x, s.raw, s.y, s.idx} {
			if b != nil {
				l.d.Free(b)
			}
		}
		if s.pinned {
			for _, h := range [][]byte{s.pixels, s.ints} {
				if h != nil {
					l.d.FreeHost(h)
				}
			}
		}
	}
	for _, b := range []device.Buffer{l.images, l.labels} {
		if b != nil {
			l.d.Free(b)
		}
	}
	l.slots, l.images, l.labels, l.pending = nil, nil, nil, nil
}

// float32s and int32s view staging bytes as elements. Staging is 4-byte
// aligned: Go memory is allocated as int32, and pinned memory is
// page-aligned.
func float32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

func int32s(b []byte) []int32 {
	return unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}
