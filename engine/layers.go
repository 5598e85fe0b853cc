// Package engine trains neural networks on a device.Device: layers, the
// Sequential model, the loss, momentum SGD and the trainer loop with its
// cost accounting. Everything here is written once, against the Device
// interface, and runs unchanged on the CPU and on the GPU.
package engine

import (
	"fmt"

	"github.com/batchlab/batchlab/engine/device"
)

// param is one trainable tensor with its gradient and optimizer state, all
// resident on the device.
type param struct {
	Name     string
	Shape    []int
	Value    device.Buffer
	Grad     device.Buffer
	Velocity device.Buffer // momentum SGD's velocity, Adam's first moment m
	// SecondMoment is Adam's v, allocated by the trainer; nil for momentum SGD.
	SecondMoment device.Buffer
}

// Size is the number of elements.
func (p *param) Size() int { return p.Value.Len() }

// layer is one stage of a Sequential model. Buffers are sized once for the
// largest batch (maxRows); each call says how many rows it uses, so the last,
// smaller batch of an epoch needs no reallocation.
type layer interface {
	// Forward returns the layer's output for rows rows of x. It may keep x
	// for Backward.
	Forward(d device.Device, x device.Buffer, rows int) device.Buffer
	// Backward takes the gradient of the loss with respect to the output,
	// accumulates nothing (it overwrites the parameter gradients) and returns
	// the gradient with respect to the input; nil when the input needs none.
	Backward(d device.Device, dy device.Buffer, rows int) device.Buffer
	Params() []*param
	OutputSize() int
	String() string
}

// linear is y = x·W + b with W stored in×out, row-major.
type linear struct {
	In, Out int
	W, B    *param
	// InputGrad is false for the first layer, whose input is data: its dx
	// would be one GEMM of wasted work per step.
	InputGrad bool

	x     device.Buffer // the input of the last Forward
	y, dx device.Buffer
}

func newLinear(d device.Device, name string, in, out, maxRows int, inputGrad bool) (*linear, error) {
	l := &linear{In: in, Out: out, InputGrad: inputGrad}
	var err error
	if l.W, err = newParam(d, name+".weight", in, out); err != nil {
		return nil, err
	}
	if l.B, err = newParam(d, name+".bias", out); err != nil {
		return nil, err
	}
	if l.y, err = d.Alloc(device.Float32, maxRows*out); err != nil {
		return nil, fmt.Errorf("%s output: %w", name, err)
	}
	if inputGrad {
		if l.dx, err = d.Alloc(device.Float32, maxRows*in); err != nil {
			return nil, fmt.Errorf("%s input gradient: %w", name, err)
		}
	}
	return l, nil
}

func newParam(d device.Device, name string, shape ...int) (*param, error) {
	n := 1
	for _, s := range shape {
		n *= s
	}
	p := &param{Name: name, Shape: shape}
	for _, b := range []*device.Buffer{&p.Value, &p.Grad, &p.Velocity} {
		var err error
		if *b, err = d.Alloc(device.Float32, n); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return p, nil
}

func (l *linear) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	l.x = x
	d.Gemm(false, false, rows, l.Out, l.In, 1, x, l.W.Value, 0, l.y)
	d.AddBias(l.y, l.B.Value, rows, l.Out)
	return l.y
}

func (l *linear) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	d.Gemm(true, false, l.In, l.Out, rows, 1, l.x, dy, 0, l.W.Grad) // dW = xᵀ·dy
	d.ColumnSum(l.B.Grad, dy, rows, l.Out, 0)                       // db = Σ_rows dy
	if !l.InputGrad {
		return nil
	}
	d.Gemm(false, true, rows, l.In, l.Out, 1, dy, l.W.Value, 0, l.dx) // dx = dy·Wᵀ
	return l.dx
}

func (l *linear) Params() []*param { return []*param{l.W, l.B} }
func (l *linear) OutputSize() int  { return l.Out }
func (l *linear) fanIn() int       { return l.In }
func (l *linear) String() string   { return fmt.Sprintf("Linear(%d→%d)", l.In, l.Out) }

// relu works in place: its output overwrites its input (which the layer
// before no longer needs) and its input gradient overwrites the incoming
// gradient. That halves the activation memory of an MLP.
type relu struct {
	Size int
	y    device.Buffer
}

func newReLU(size int) *relu { return &relu{Size: size} }

func (r *relu) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	d.ReLU(x, x, rows*r.Size)
	r.y = x
	return x
}

func (r *relu) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	d.ReLUBackward(dy, dy, r.y, rows*r.Size)
	return dy
}

func (r *relu) Params() []*param { return nil }
func (r *relu) OutputSize() int  { return r.Size }
func (r *relu) String() string   { return "ReLU" }
