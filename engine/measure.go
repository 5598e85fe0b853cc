package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// probe evaluates the training loss and its gradient at the model's current
// weights on chosen samples, for the measurements of the study (sharpness,
// gradient noise scale). It has its own loader and scratch buffers, so it
// can run between training steps without disturbing the trainer's.
type probe struct {
	t       *Trainer
	loader  data.Loader
	chunk   int
	losses  device.Buffer
	dlogits device.Buffer
}

// errBatchNormProbe: a probe's forward passes would move the running
// statistics of batch normalization, and in evaluation mode there is no
// backward pass; the measurements are defined on plain MLPs.
var errBatchNormProbe = errors.New("sharpness and noise scale are measured on models without batch normalization")

// newProbe prepares a probe for the trainer's model and training set.
func newProbe(t *Trainer) (*probe, error) {
	for _, l := range t.Model.layers {
		if _, ok := l.(*batchNorm); ok {
			return nil, errBatchNormProbe
		}
	}
	if err := checkMemory(t.config, ShapeOf(t.train, t.test), t.d, true); err != nil {
		return nil, err
	}
	p := &probe{t: t, chunk: t.Model.maxRows}
	var err error
	if p.loader, err = data.NewLoader(t.d, t.train, p.chunk, t.config.Transfer); err != nil {
		return nil, err
	}
	if p.losses, err = t.d.Alloc(device.Float32, 1); err != nil {
		return nil, err
	}
	if p.dlogits, err = t.d.Alloc(device.Float32, p.chunk*t.train.Classes); err != nil {
		return nil, err
	}
	return p, nil
}

// Close frees the probe's buffers.
func (p *probe) Close() {
	p.loader.Close()
	p.t.d.Free(p.losses)
	p.t.d.Free(p.dlogits)
}

// Loss returns the mean training loss over the samples at idx.
func (p *probe) Loss(idx []int32) (float64, error) {
	loss, _, err := p.eval(idx, false)
	return loss, err
}

// LossAndGradient returns the mean loss over the samples at idx and its
// gradient with respect to every parameter (in Model.params order), summed
// on the host in float64 over chunks of at most Model.maxRows rows.
func (p *probe) LossAndGradient(idx []int32) (float64, [][]float64, error) {
	return p.eval(idx, true)
}

func (p *probe) eval(idx []int32, withGrad bool) (float64, [][]float64, error) {
	if len(idx) == 0 {
		return 0, nil, errors.New("probe: no samples")
	}
	d, m := p.t.d, p.t.Model
	classes := p.t.train.Classes
	var grads [][]float64
	if withGrad {
		for _, par := range m.params() {
			grads = append(grads, make([]float64, par.Size()))
		}
	}
	var loss float64
	host := []float32{0}
	for lo := 0; lo < len(idx); lo += p.chunk {
		chunk := idx[lo:min(lo+p.chunk, len(idx))]
		rows := len(chunk)
		x, labels, err := p.loader.Load(chunk)
		if err != nil {
			return 0, nil, err
		}
		logits := m.forward(d, x, rows)
		var dl device.Buffer
		if withGrad {
			dl = p.dlogits
		}
		// Scaled by 1/len(idx), each chunk's gradient is its share of the mean.
		d.SoftmaxCrossEntropy(dl, p.losses, logits, labels, nil, 0, rows, classes, 1/float32(len(idx)))
		if withGrad {
			m.backward(d, p.dlogits, rows)
		}
		if err := d.Sync(); err != nil {
			return 0, nil, err
		}
		if err := device.Download(d, host, p.losses); err != nil {
			return 0, nil, err
		}
		loss += float64(host[0]) * float64(rows) / float64(len(idx))
		if withGrad {
			gs, err := m.ReadParams(d, true)
			if err != nil {
				return 0, nil, err
			}
			for i, g := range gs {
				for j, v := range g {
					grads[i][j] += float64(v)
				}
			}
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, grads, fmt.Errorf("probe: the loss is %g", loss)
	}
	return loss, grads, nil
}

// sampleIndices draws n distinct training samples from a seeded shuffle.
func sampleIndices(total, n int, seed uint64, draw int) []int32 {
	return data.Permutation(total, seed, draw)[:min(n, total)]
}

// squaredNorm is Σ g² over every tensor.
func squaredNorm(grads [][]float64) float64 {
	var s float64
	for _, g := range grads {
		for _, v := range g {
			s += v * v
		}
	}
	return s
}
