package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/batchlab/batchlab/engine/device"
)

// gradProblem is a small model with one batch of random inputs and labels,
// the model's parameters, and the gradients our engine computes for them.
type gradProblem struct {
	d       device.Device
	model   *Model
	widths  []int // of an MLP
	rows    int
	classes int
	x       []float32
	labels  []int32
	params  [][]float32
	grads   [][]float32
	xb, lb  device.Buffer
	dlogits device.Buffer
	losses  device.Buffer
}

func newGradProblem(t *testing.T, arch mlpArch) *gradProblem {
	t.Helper()
	arch.Widths = []int{20, 16, 12, 5}
	p := newGradProblemOf(t, arch, 7, arch.Widths[0], arch.Widths[len(arch.Widths)-1])
	p.widths = arch.Widths
	return p
}

// newGradProblemOf builds arch for rows rows of features inputs.
func newGradProblemOf(t *testing.T, arch architecture, rows, features, classes int) *gradProblem {
	t.Helper()
	p := &gradProblem{d: device.NewCPU(), rows: rows, classes: classes}
	r := rand.New(rand.NewPCG(11, 12))
	p.x = make([]float32, p.rows*features)
	for i := range p.x {
		p.x[i] = float32(r.NormFloat64())
	}
	p.labels = make([]int32, p.rows)
	for i := range p.labels {
		p.labels[i] = int32(r.IntN(classes))
	}
	var err error
	if p.model, err = arch.build(p.d, p.rows, 5); err != nil {
		t.Fatal(err)
	}
	p.xb, _ = p.d.Alloc(device.Float32, len(p.x))
	p.lb, _ = p.d.Alloc(device.Int32, p.rows)
	p.dlogits, _ = p.d.Alloc(device.Float32, p.rows*classes)
	p.losses, _ = p.d.Alloc(device.Float32, 1)
	if err := device.Upload(p.d, p.xb, p.x); err != nil {
		t.Fatal(err)
	}
	if err := device.Upload(p.d, p.lb, p.labels); err != nil {
		t.Fatal(err)
	}
	if p.params, err = p.model.ReadParams(p.d, false); err != nil {
		t.Fatal(err)
	}
	p.loss(t, true)
	p.model.backward(p.d, p.dlogits, p.rows)
	if p.grads, err = p.model.ReadParams(p.d, true); err != nil {
		t.Fatal(err)
	}
	return p
}

// loss runs the model forward on the batch and returns the mean loss.
func (p *gradProblem) loss(t *testing.T, withGrad bool) float32 {
	t.Helper()
	logits := p.model.forward(p.d, p.xb, p.rows)
	grad := p.dlogits
	if !withGrad {
		grad = nil
	}
	p.d.SoftmaxCrossEntropy(grad, p.losses, logits, p.lb, nil, 0, p.rows, p.classes, 1/float32(p.rows))
	out := make([]float32, 1)
	if err := p.d.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := device.Download(p.d, out, p.losses); err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// TestGradientsMatchGorgonia builds the same MLP in Gorgonia, with the same
// weights, and compares our backward pass with its symbolic differentiation.
func TestGradientsMatchGorgonia(t *testing.T) {
	p := newGradProblem(t, mlpArch{})
	g := gorgonia.NewGraph()
	h := gorgoniaTensor(g, "x", p.x, p.rows, p.widths[0])
	var wrt gorgonia.Nodes
	for i := 1; i < len(p.widths); i++ {
		in, out := p.widths[i-1], p.widths[i]
		var err error
		if h, err = gorgoniaLinear(g, h, &wrt, in, out, p.params[2*(i-1)], p.params[2*(i-1)+1]); err != nil {
			t.Fatal(err)
		}
		if i < len(p.widths)-1 {
			h = gorgonia.Must(gorgonia.Rectify(h))
		}
	}
	compareWithGorgonia(t, p, g, h, wrt)
}

// gorgoniaTensor is a node holding a copy of data in the given shape.
func gorgoniaTensor(g *gorgonia.ExprGraph, name string, data []float32, shape ...int) *gorgonia.Node {
	v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), data...)))
	return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithValue(v), gorgonia.WithName(name))
}

// gorgoniaLinear is h·W + b with our linear layer's weights (W in×out),
// its parameters appended to wrt.
func gorgoniaLinear(g *gorgonia.ExprGraph, h *gorgonia.Node, wrt *gorgonia.Nodes, in, out int, w, b []float32) (*gorgonia.Node, error) {
	wn, bn := gorgoniaTensor(g, "w", w, in, out), gorgoniaTensor(g, "b", b, 1, out)
	*wrt = append(*wrt, wn, bn)
	return gorgonia.BroadcastAdd(gorgonia.Must(gorgonia.Mul(h, wn)), bn, nil, []byte{0})
}

// compareWithGorgonia adds the mean softmax cross-entropy of the logits to
// g, differentiates it with respect to wrt (the model's parameters in
// order) and compares the loss and the gradients with ours.
func compareWithGorgonia(t *testing.T, p *gradProblem, g *gorgonia.ExprGraph, logits *gorgonia.Node, wrt gorgonia.Nodes) {
	t.Helper()
	onehot := make([]float32, p.rows*p.classes)
	for i, l := range p.labels {
		onehot[i*p.classes+int(l)] = 1
	}
	// loss = −(1/rows)·Σ onehot ⊙ log softmax(logits)
	logp := gorgonia.Must(gorgonia.Log(gorgonia.Must(gorgonia.SoftMax(logits))))
	picked := gorgonia.Must(gorgonia.HadamardProd(logp, gorgoniaTensor(g, "onehot", onehot, p.rows, p.classes)))
	cost := gorgonia.Must(gorgonia.Neg(gorgonia.Must(gorgonia.Mean(gorgonia.Must(gorgonia.Sum(picked, 1))))))
	if _, err := gorgonia.Grad(cost, wrt...); err != nil {
		t.Fatal(err)
	}
	vm := gorgonia.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	if got, want := float64(p.loss(t, false)), float64(cost.Value().Data().(float32)); math.Abs(got-want) > 1e-5*math.Abs(want) {
		t.Errorf("loss %g, Gorgonia's %g", got, want)
	}
	if len(wrt) != len(p.grads) {
		t.Fatalf("%d tensors in Gorgonia's model, %d in ours", len(wrt), len(p.grads))
	}
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		want := gv.Data().([]float32)
		name := p.model.params()[i].Name
		if len(want) != len(p.grads[i]) {
			t.Fatalf("%s: %d gradients, Gorgonia's %d", name, len(p.grads[i]), len(want))
		}
		for j := range want {
			if diff := math.Abs(float64(p.grads[i][j] - want[j])); diff > 1e-6+1e-4*math.Abs(float64(want[j])) {
				t.Errorf("%s gradient[%d] = %g, Gorgonia's %g", name, j, p.grads[i][j], want[j])
				break
			}
		}
	}
}

// TestGradientsMatchFiniteDifferences perturbs a sample of every parameter
// tensor and compares the central difference of the loss with our gradient,
// for the plain MLP and with (ghost) batch normalization. (A ghost group of
// one row would put every output at the ReLU kink: 7 rows in groups of 4.)
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, arch := range []mlpArch{{}, {BatchNorm: true}, {GhostBatch: 4}} {
		t.Run(fmt.Sprintf("batchnorm=%v/ghost=%d", arch.BatchNorm, arch.GhostBatch), func(t *testing.T) {
			checkFiniteDifferences(t, newGradProblem(t, arch))
		})
	}
}

func checkFiniteDifferences(t *testing.T, p *gradProblem) {
	const h = 5e-3 // float32 loss: smaller steps drown in rounding
	r := rand.New(rand.NewPCG(1, 2))
	for i, param := range p.model.params() {
		for range 8 {
			j := r.IntN(param.Size())
			values := cloneParams(p.params)
			values[i][j] = p.params[i][j] + h
			if err := p.model.writeParams(p.d, values); err != nil {
				t.Fatal(err)
			}
			up := p.loss(t, false)
			values[i][j] = p.params[i][j] - h
			if err := p.model.writeParams(p.d, values); err != nil {
				t.Fatal(err)
			}
			down := p.loss(t, false)
			fd := float64(up-down) / (2 * h)
			an := float64(p.grads[i][j])
			if math.Abs(fd-an) > 2e-3+0.05*math.Abs(an) {
				t.Errorf("%s[%d]: gradient %g, finite difference %g", param.Name, j, an, fd)
			}
		}
	}
}

func cloneParams(ps [][]float32) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = append([]float32(nil), p...)
	}
	return out
}
