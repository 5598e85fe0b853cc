package engine

import (
	"fmt"

	"github.com/batchlab/batchlab/engine/device"
)

// batchNorm normalizes each feature over the batch, or over ghost batches of
// Ghost rows (Hoffer et al. 2017: large-batch training keeps the noise of
// small-batch statistics). In training it uses the group's statistics and
// updates running ones; in evaluation it uses the running ones.
type batchNorm struct {
	Name            string
	Features, Ghost int
	Gamma, Beta     *param
	RunMean, RunVar device.Buffer

	bn           device.BatchNormer
	training     bool
	x            device.Buffer // the input of the last Forward
	y, dx        device.Buffer
	mean, invStd device.Buffer // per group, saved for Backward
}

// PyTorch's defaults.
const (
	bnMomentum = 0.1
	bnEps      = 1e-5
)

func newBatchNorm(d device.Device, name string, features, maxRows, ghost int) (*batchNorm, error) {
	bn, ok := d.(device.BatchNormer)
	if !ok {
		return nil, fmt.Errorf("the %s device has no batch normalization", d.Info().Kind)
	}
	l := &batchNorm{Name: name, Features: features, Ghost: ghost, bn: bn, training: true}
	var err error
	if l.Gamma, err = newParam(d, name+".weight", features); err != nil {
		return nil, err
	}
	if l.Beta, err = newParam(d, name+".bias", features); err != nil {
		return nil, err
	}
	groups := device.GhostGroups(maxRows, ghost)
	for _, b := range []struct {
		buf *device.Buffer
		n   int
	}{{&l.RunMean, features}, {&l.RunVar, features}, {&l.y, maxRows * features}, {&l.dx, maxRows * features},
		{&l.mean, groups * features}, {&l.invStd, groups * features}} {
		if *b.buf, err = d.Alloc(device.Float32, b.n); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	ones := make([]float32, features)
	for i := range ones {
		ones[i] = 1
	}
	for _, b := range []device.Buffer{l.Gamma.Value, l.RunVar} {
		if err := device.Upload(d, b, ones); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return l, nil
}

func (l *batchNorm) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	l.x = x
	if l.training {
		l.bn.BatchNormTrain(l.y, x, l.Gamma.Value, l.Beta.Value, l.mean, l.invStd, l.RunMean, l.RunVar, rows, l.Features, l.Ghost, bnMomentum, bnEps)
	} else {
		l.bn.BatchNormInfer(l.y, x, l.Gamma.Value, l.Beta.Value, l.RunMean, l.RunVar, rows, l.Features, bnEps)
	}
	return l.y
}

func (l *batchNorm) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	l.bn.BatchNormBackward(l.dx, l.Gamma.Grad, l.Beta.Grad, dy, l.x, l.Gamma.Value, l.mean, l.invStd, rows, l.Features, l.Ghost)
	return l.dx
}

func (l *batchNorm) Params() []*param       { return []*param{l.Gamma, l.Beta} }
func (l *batchNorm) OutputSize() int        { return l.Features }
func (l *batchNorm) setTraining(train bool) { l.training = train }

func (l *batchNorm) String() string {
	if l.Ghost > 0 {
		return fmt.Sprintf("GhostBatchNorm(%d)", l.Ghost)
	}
	return "BatchNorm"
}
