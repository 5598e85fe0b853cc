package data

import (
	"fmt"
	"math/rand/v2"

	"github.com/batchlab/batchlab/engine/device"
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

// Loader moves batches of a dataset to a device: it gathers the batch's
// images on the host, scales them to [0,1] as float32, and copies them and
// the int32 labels from ordinary (pageable) Go memory. This is the baseline
// data path; the transfer-strategy issue adds pinned, asynchronous, uint8 and
// device-resident ones beside it.
type Loader struct {
	d       device.Device
	ds      *Dataset
	maxRows int

	hostX      []float32
	hostLabels []int32
	x, labels  device.Buffer
}

// NewLoader allocates host staging and device buffers for batches of up to
// maxRows samples.
func NewLoader(d device.Device, ds *Dataset, maxRows int) (*Loader, error) {
	if maxRows <= 0 {
		return nil, fmt.Errorf("loader: batch size must be positive, got %d", maxRows)
	}
	l := &Loader{
		d: d, ds: ds, maxRows: maxRows,
		hostX:      make([]float32, maxRows*ds.Features()),
		hostLabels: make([]int32, maxRows),
	}
	var err error
	if l.x, err = d.Alloc(device.Float32, maxRows*ds.Features()); err != nil {
		return nil, fmt.Errorf("loader: batch buffer: %w", err)
	}
	if l.labels, err = d.Alloc(device.Int32, maxRows); err != nil {
		return nil, fmt.Errorf("loader: label buffer: %w", err)
	}
	return l, nil
}

// Load puts the samples at indices on the device and returns the buffers
// holding them (len(indices) rows); they stay valid until the next Load.
func (l *Loader) Load(indices []int32) (x, labels device.Buffer, err error) {
	rows := len(indices)
	if rows > l.maxRows {
		return nil, nil, fmt.Errorf("loader: batch of %d exceeds the %d it was sized for", rows, l.maxRows)
	}
	f := l.ds.Features()
	for i, idx := range indices {
		if idx < 0 || int(idx) >= l.ds.Len() {
			return nil, nil, fmt.Errorf("loader: sample %d outside %s's %d", idx, l.ds.Name, l.ds.Len())
		}
		src := l.ds.Images[int(idx)*f : (int(idx)+1)*f]
		dst := l.hostX[i*f : (i+1)*f]
		for j, v := range src {
			dst[j] = float32(v) / 255
		}
		l.hostLabels[i] = int32(l.ds.Labels[idx])
	}
	if err := device.Upload(l.d, l.x, l.hostX[:rows*f]); err != nil {
		return nil, nil, fmt.Errorf("loader: copying images: %w", err)
	}
	if err := device.Upload(l.d, l.labels, l.hostLabels[:rows]); err != nil {
		return nil, nil, fmt.Errorf("loader: copying labels: %w", err)
	}
	return l.x, l.labels, nil
}

// Close frees the device buffers.
func (l *Loader) Close() {
	l.d.Free(l.x)
	l.d.Free(l.labels)
}
