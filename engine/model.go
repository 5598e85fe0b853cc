package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/batchlab/batchlab/engine/device"
)

// Model is a Sequential stack of layers bound to one device, with buffers
// sized for batches of up to maxRows rows.
type Model struct {
	layers  []layer
	inputs  int
	maxRows int
}

// mlpArch describes an MLP: its widths, input first, and whether a batch
// normalization (over ghost batches of GhostBatch rows, if set) follows
// each hidden Linear.
type mlpArch struct {
	Widths     []int
	BatchNorm  bool
	GhostBatch int
}

// newMLP builds the MLP arch describes on d (Linear, then [BatchNorm,]
// ReLU, for each hidden width; Linear to the output), with buffers for up to
// maxRows rows. Weights and biases are drawn uniformly from ±1/√fan_in, as
// PyTorch's nn.Linear does by default, from a PCG stream of seed, so the
// same seed gives the same model on every device.
func newMLP(d device.Device, arch mlpArch, maxRows int, seed uint64) (*Model, error) {
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
	m := &Model{inputs: widths[0], maxRows: maxRows}
	for i := 1; i < len(widths); i++ {
		l, err := newLinear(d, fmt.Sprintf("fc%d", i), widths[i-1], widths[i], maxRows, i > 1)
		if err != nil {
			return nil, fmt.Errorf("allocating the model: %w", err)
		}
		m.layers = append(m.layers, l)
		if i == len(widths)-1 {
			break
		}
		if arch.BatchNorm || arch.GhostBatch > 0 {
			bn, err := newBatchNorm(d, fmt.Sprintf("bn%d", i), widths[i], 1, maxRows, arch.GhostBatch)
			if err != nil {
				return nil, fmt.Errorf("allocating the model: %w", err)
			}
			m.layers = append(m.layers, bn)
		}
		m.layers = append(m.layers, newReLU(widths[i]))
	}
	if err := m.initialize(d, seed); err != nil {
		return nil, err
	}
	return m, nil
}

// newCNN builds the CNN arch describes on d, with buffers for up to maxRows
// images, and initializes it as newMLP does (PyTorch's default for Conv2d
// is the same uniform ±1/√fan_in, with fan_in = C·KH·KW).
func newCNN(d device.Device, arch cnnArch, maxRows int, seed uint64) (*Model, error) {
	if maxRows <= 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", maxRows)
	}
	m := &Model{inputs: arch.Channels * arch.Side * arch.Side, maxRows: maxRows}
	add := func(l layer, err error) error {
		if err != nil {
			return fmt.Errorf("allocating the model: %w", err)
		}
		m.layers = append(m.layers, l)
		return nil
	}
	convs, flat := arch.stageShapes(maxRows)
	for i, s := range convs {
		c, err := newConv2d(d, fmt.Sprintf("conv%d", i+1), s, arch.Convs[i].Filters, i > 0)
		if err := add(c, err); err != nil {
			return nil, err
		}
		oh, ow := s.OutH(), s.OutW()
		if arch.BatchNorm {
			if err := add(newBatchNorm(d, fmt.Sprintf("bn%d", i+1), c.F, oh*ow, maxRows, arch.GhostBatch)); err != nil {
				return nil, err
			}
		}
		// ReLU after the pooling, not before: max commutes with ReLU (both
		// orders give the same outputs, argmaxes that differ only where the
		// gradient is zero, and the same gradients), and after it ReLU runs
		// over a quarter of the elements.
		pool, err := newMaxPool(d, device.PoolShape{N: maxRows, C: c.F, H: oh, W: ow, K: poolSize, Stride: poolSize})
		if err := add(pool, err); err != nil {
			return nil, err
		}
		m.layers = append(m.layers, newReLU(pool.OutputSize()))
	}
	channels := arch.Convs[len(convs)-1].Filters
	if err := add(newFlatten(d, channels, flat/channels, maxRows)); err != nil {
		return nil, err
	}
	widths := append(append([]int{flat}, arch.Hidden...), arch.Classes)
	for i := 1; i < len(widths); i++ {
		if err := add(newLinear(d, fmt.Sprintf("fc%d", i), widths[i-1], widths[i], maxRows, true)); err != nil {
			return nil, err
		}
		if i < len(widths)-1 {
			m.layers = append(m.layers, newReLU(widths[i]))
		}
	}
	if err := m.initialize(d, seed); err != nil {
		return nil, err
	}
	return m, nil
}

// initialize draws every Linear's and Conv2d's weights and biases, layer
// by layer, uniformly from ±1/√fan_in, as PyTorch does by default.
func (m *Model) initialize(d device.Device, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 0x1417))
	for _, l := range m.layers {
		w, ok := l.(interface{ fanIn() int })
		if !ok {
			continue
		}
		bound := 1 / math.Sqrt(float64(w.fanIn()))
		for _, p := range l.Params() {
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

// setTraining switches layers that behave differently in training and in
// evaluation (batch normalization) to one or the other.
func (m *Model) setTraining(train bool) {
	for _, l := range m.layers {
		if t, ok := l.(interface{ setTraining(bool) }); ok {
			t.setTraining(train)
		}
	}
}

// outputs is the width of the last layer.
func (m *Model) outputs() int { return m.layers[len(m.layers)-1].OutputSize() }

// params lists every trainable tensor, in layer order.
func (m *Model) params() []*param {
	var ps []*param
	for _, l := range m.layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// namedBuffer is model state that is not trained but must be saved: batch
// normalization's running statistics.
type namedBuffer struct {
	Name   string
	Buffer device.Buffer
}

// buffers lists the model's untrained state, in layer order.
func (m *Model) buffers() []namedBuffer {
	var out []namedBuffer
	for _, l := range m.layers {
		if bn, ok := l.(*batchNorm); ok {
			out = append(out, namedBuffer{bn.Name + ".running_mean", bn.RunMean}, namedBuffer{bn.Name + ".running_var", bn.RunVar})
		}
	}
	return out
}

// ParamCount is the number of trainable scalars.
func (m *Model) ParamCount() int {
	n := 0
	for _, p := range m.params() {
		n += p.Size()
	}
	return n
}

// forward runs rows rows of x through the model and returns the logits.
func (m *Model) forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	for _, l := range m.layers {
		x = l.Forward(d, x, rows)
	}
	return x
}

// backward propagates the gradient of the loss with respect to the logits
// and leaves every parameter's gradient in its Grad buffer.
func (m *Model) backward(d device.Device, dlogits device.Buffer, rows int) {
	g := dlogits
	for i := len(m.layers) - 1; i >= 0 && g != nil; i-- {
		g = m.layers[i].Backward(d, g, rows)
	}
}

func (m *Model) String() string {
	parts := make([]string, len(m.layers))
	for i, l := range m.layers {
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
	for _, p := range m.params() {
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

// writeParams sets every parameter from host values, in Params order.
func (m *Model) writeParams(d device.Device, values [][]float32) error {
	ps := m.params()
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
