package engine

import (
	"fmt"

	"github.com/batchlab/batchlab/engine/device"
)

// batchNorm normalizes each feature over the batch, or over ghost batches of
// Ghost rows (Hoffer et al. 2017: large-batch training keeps the noise of
// small-batch statistics). In training it uses the group's statistics and
// updates running ones; in evaluation it uses the running ones.
//
// After a convolution it normalizes each channel over the batch and the
// map's Pixels positions (PyTorch's BatchNorm2d): the channel-major map
// (conv2d) is swapped to NHWC, whose rows·Pixels rows of Features channels
// the BatchNormer normalizes as it does an MLP's rows, and back. A ghost
// batch of Ghost images is then Ghost·Pixels of those rows.
type batchNorm struct {
	Name            string
	Features, Ghost int
	Pixels          int // positions per channel: 1 after a Linear, H·W after a conv
	Gamma, Beta     *param
	RunMean, RunVar device.Buffer

	bn           device.BatchNormer
	cv           device.Convolver // with Pixels > 1
	training     bool
	x            device.Buffer // the (NHWC) input of the last Forward
	y, dx        device.Buffer
	mean, invStd device.Buffer // per group, saved for Backward
	// With Pixels > 1: the NHWC input (x) and output; y then takes the
	// NHWC input gradient before it is swapped into dx (y is free by then:
	// the layer after has done its backward pass).
	nhwcX, nhwcY device.Buffer
}

// PyTorch's defaults.
const (
	bnMomentum = 0.1
	bnEps      = 1e-5
)

func newBatchNorm(d device.Device, name string, features, pixels, maxRows, ghost int) (*batchNorm, error) {
	bn, ok := d.(device.BatchNormer)
	if !ok {
		return nil, fmt.Errorf("the %s device has no batch normalization", d.Info().Kind)
	}
	l := &batchNorm{Name: name, Features: features, Pixels: pixels, Ghost: ghost, bn: bn, training: true}
	var err error
	if pixels > 1 {
		if l.cv, err = convolver(d); err != nil {
			return nil, err
		}
	}
	if l.Gamma, err = newParam(d, name+".weight", features); err != nil {
		return nil, err
	}
	if l.Beta, err = newParam(d, name+".bias", features); err != nil {
		return nil, err
	}
	if err := allocAll(d, name, l.buffers(maxRows)); err != nil {
		return nil, err
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

// buffers lists what the layer allocates besides its parameters, for
// newBatchNorm and the memory plan.
func (l *batchNorm) buffers(maxRows int) []sizedBuffer {
	f32, n := device.Float32, maxRows*l.Pixels*l.Features
	groups := device.GhostGroups(maxRows*l.Pixels, l.Ghost*l.Pixels)
	bs := []sizedBuffer{{&l.RunMean, f32, l.Features}, {&l.RunVar, f32, l.Features}, {&l.y, f32, n}, {&l.dx, f32, n},
		{&l.mean, f32, groups * l.Features}, {&l.invStd, f32, groups * l.Features}}
	if l.Pixels > 1 {
		bs = append(bs, sizedBuffer{&l.nhwcX, f32, n}, sizedBuffer{&l.nhwcY, f32, n})
	}
	return bs
}

func (l *batchNorm) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	y := l.y
	if l.Pixels > 1 {
		l.cv.SwapAxes(l.nhwcX, x, 1, l.Features, rows*l.Pixels, 1)
		x, y = l.nhwcX, l.nhwcY
	}
	l.x = x
	n := rows * l.Pixels
	if l.training {
		l.bn.BatchNormTrain(y, x, l.Gamma.Value, l.Beta.Value, l.mean, l.invStd, l.RunMean, l.RunVar, n, l.Features, l.Ghost*l.Pixels, bnMomentum, bnEps)
	} else {
		l.bn.BatchNormInfer(y, x, l.Gamma.Value, l.Beta.Value, l.RunMean, l.RunVar, n, l.Features, bnEps)
	}
	if l.Pixels > 1 {
		l.cv.SwapAxes(l.y, y, 1, rows*l.Pixels, l.Features, 1)
	}
	return l.y
}

func (l *batchNorm) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	if l.Pixels == 1 {
		l.bn.BatchNormBackward(l.dx, l.Gamma.Grad, l.Beta.Grad, dy, l.x, l.Gamma.Value, l.mean, l.invStd, rows, l.Features, l.Ghost)
		return l.dx
	}
	l.cv.SwapAxes(l.nhwcY, dy, 1, l.Features, rows*l.Pixels, 1)
	l.bn.BatchNormBackward(l.y, l.Gamma.Grad, l.Beta.Grad, l.nhwcY, l.x, l.Gamma.Value, l.mean, l.invStd, rows*l.Pixels, l.Features, l.Ghost*l.Pixels)
	l.cv.SwapAxes(l.dx, l.y, 1, rows*l.Pixels, l.Features, 1)
	return l.dx
}

func (l *batchNorm) Params() []*param       { return []*param{l.Gamma, l.Beta} }
func (l *batchNorm) OutputSize() int        { return l.Features * l.Pixels }
func (l *batchNorm) setTraining(train bool) { l.training = train }

func (l *batchNorm) String() string {
	name := "BatchNorm"
	if l.Pixels > 1 {
		name = "BatchNorm2d"
	}
	if l.Ghost > 0 {
		return fmt.Sprintf("Ghost%s(%d)", name, l.Ghost)
	}
	return name
}
