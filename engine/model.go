package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/batchlab/batchlab/engine/device"
)

// Model is a Sequential stack of layers bound to one device, with buffers
// sized for batches of up to MaxRows rows.
type Model struct {
	Layers  []Layer
	Inputs  int
	MaxRows int
}

// Arch describes an MLP: its widths, input first, and whether a batch
// normalization (over ghost batches of GhostBatch rows, if set) follows
// each hidden Linear.
type Arch struct {
	Widths     []int
	BatchNorm  bool
	GhostBatch int
}

// NewMLP builds the MLP arch describes on d (Linear, then [BatchNorm,]
// ReLU, for each hidden width; Linear to the output), with buffers for up to
// maxRows rows. Weights and biases are drawn uniformly from ±1/√fan_in, as
// PyTorch's nn.Linear does by default, from a PCG stream of seed, so the
// same seed gives the same model on every device.
func NewMLP(d device.Device, arch Arch, maxRows int, seed uint64) (*Model, error) {
	widths := arch.Widths
	if len(widths) < 2 {
		return nil, fmt.Errorf("an MLP needs at least an input and an output width, got %v", widths)
	}
	for _, w := range widths {
		if w <= 0 {
			return nil, fmt.Errorf("layer widths must be positive, got %v", widths)
		}
	}
	if maxRows <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", maxRows)
	}
	if arch.GhostBatch < 0 {
		return nil, fmt.Errorf("ghost batch must not be negative, got %d", arch.GhostBatch)
	}
	m := &Model{Inputs: widths[0], MaxRows: maxRows}
	for i := 1; i < len(widths); i++ {
		l, err := newLinear(d, fmt.Sprintf("fc%d", i), widths[i-1], widths[i], maxRows, i > 1)
		if err != nil {
			return nil, fmt.Errorf("allocating the model: %w", err)
		}
		m.Layers = append(m.Layers, l)
		if i == len(widths)-1 {
			break
		}
		if arch.BatchNorm || arch.GhostBatch > 0 {
			bn, err := newBatchNorm(d, fmt.Sprintf("bn%d", i), widths[i], maxRows, arch.GhostBatch)
			if err != nil {
				return nil, fmt.Errorf("allocating the model: %w", err)
			}
			m.Layers = append(m.Layers, bn)
		}
		m.Layers = append(m.Layers, newReLU(widths[i]))
	}
	if err := m.initialize(d, seed); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Model) initialize(d device.Device, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x1417))
	for _, l := range m.Layers {
		lin, ok := l.(*Linear)
		if !ok {
			continue
		}
		bound := 1 / math.Sqrt(float64(lin.In))
		for _, p := range lin.Params() {
			host := make([]float32, p.Size())
			for i := range host {
				host[i] = float32((2*r.Float64() - 1) * bound)
			}
			if err := device.Upload(d, p.Value, host); err != nil {
				return fmt.Errorf("initializing %s: %w", p.Name, err)
			}
		}
	}
	return nil
}

// SetTraining switches layers that behave differently in training and in
// evaluation (batch normalization) to one or the other.
func (m *Model) SetTraining(train bool) {
	for _, l := range m.Layers {
		if t, ok := l.(interface{ setTraining(bool) }); ok {
			t.setTraining(train)
		}
	}
}

// Outputs is the width of the last layer.
func (m *Model) Outputs() int { return m.Layers[len(m.Layers)-1].OutputSize() }

// Params lists every trainable tensor, in layer order.
func (m *Model) Params() []*Param {
	var ps []*Param
	for _, l := range m.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// NamedBuffer is model state that is not trained but must be saved: batch
// normalization's running statistics.
type NamedBuffer struct {
	Name   string
	Buffer device.Buffer
}

// Buffers lists the model's untrained state, in layer order.
func (m *Model) Buffers() []NamedBuffer {
	var out []NamedBuffer
	for _, l := range m.Layers {
		if bn, ok := l.(*BatchNorm); ok {
			out = append(out, NamedBuffer{bn.Name + ".running_mean", bn.RunMean}, NamedBuffer{bn.Name + ".running_var", bn.RunVar})
		}
	}
	return out
}

// ParamCount is the number of trainable scalars.
func (m *Model) ParamCount() int {
	n := 0
	for _, p := range m.Params() {
		n += p.Size()
	}
	return n
}

// Forward runs rows rows of x through the model and returns the logits.
func (m *Model) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	for _, l := range m.Layers {
		x = l.Forward(d, x, rows)
	}
	return x
}

// Backward propagates the gradient of the loss with respect to the logits
// and leaves every parameter's gradient in its Grad buffer.
func (m *Model) Backward(d device.Device, dlogits device.Buffer, rows int) {
	g := dlogits
	for i := len(m.Layers) - 1; i >= 0 && g != nil; i-- {
		g = m.Layers[i].Backward(d, g, rows)
	}
}

func (m *Model) String() string {
	parts := make([]string, len(m.Layers))
	for i, l := range m.Layers {
		parts[i] = l.String()
	}
	return strings.Join(parts, " → ")
}

// ReadParams copies every parameter (or, with grads, every gradient) to the
// host, in Params order.
func (m *Model) ReadParams(d device.Device, grads bool) ([][]float32, error) {
	if err := d.Sync(); err != nil {
		return nil, err
	}
	var out [][]float32
	for _, p := range m.Params() {
		b := p.Value
		if grads {
			b = p.Grad
		}
		host := make([]float32, p.Size())
		if err := device.Download(d, host, b); err != nil {
			return nil, fmt.Errorf("reading %s: %w", p.Name, err)
		}
		out = append(out, host)
	}
	return out, nil
}

// WriteParams sets every parameter from host values, in Params order.
func (m *Model) WriteParams(d device.Device, values [][]float32) error {
	ps := m.Params()
	if len(values) != len(ps) {
		return fmt.Errorf("got %d parameter tensors, the model has %d", len(values), len(ps))
	}
	for i, p := range ps {
		if len(values[i]) != p.Size() {
			return fmt.Errorf("%s: got %d values, want %d", p.Name, len(values[i]), p.Size())
		}
		if err := device.Upload(d, p.Value, values[i]); err != nil {
			return fmt.Errorf("writing %s: %w", p.Name, err)
		}
	}
	return nil
}
