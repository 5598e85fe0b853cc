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

// gradProblem is a small MLP with one batch of random inputs and labels, the
// model's parameters, and the gradients our engine computes for them.
type gradProblem struct {
	d       device.Device
	model   *Model
	widths  []int
	rows    int
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
	p := &gradProblem{d: device.NewCPU(), widths: arch.Widths, rows: 7}
	r := rand.New(rand.NewPCG(11, 12))
	p.x = make([]float32, p.rows*p.widths[0])
	for i := range p.x {
		p.x[i] = float32(r.NormFloat64())
	}
	p.labels = make([]int32, p.rows)
	for i := range p.labels {
		p.labels[i] = int32(r.IntN(p.widths[len(p.widths)-1]))
	}
	var err error
	if p.model, err = newMLP(p.d, arch, p.rows, 5); err != nil {
		t.Fatal(err)
	}
	classes := p.widths[len(p.widths)-1]
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
	classes := p.widths[len(p.widths)-1]
	logits := p.model.forward(p.d, p.xb, p.rows)
	grad := p.dlogits
	if !withGrad {
		grad = nil
	}
	p.d.SoftmaxCrossEntropy(grad, p.losses, logits, p.lb, nil, 0, p.rows, classes, 1/float32(p.rows))
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
	matrix := func(name string, rows, cols int, data []float32) *gorgonia.Node {
		v := tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(append([]float32(nil), data...)))
		return gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(rows, cols), gorgonia.WithValue(v), gorgonia.WithName(name))
	}
	classes := p.widths[len(p.widths)-1]
	onehot := make([]float32, p.rows*classes)
	for i, l := range p.labels {
		onehot[i*classes+int(l)] = 1
	}
	h := matrix("x", p.rows, p.widths[0], p.x)
	var wrt gorgonia.Nodes
	for i := 1; i < len(p.widths); i++ {
		in, out := p.widths[i-1], p.widths[i]
		w := matrix("w", in, out, p.params[2*(i-1)])
		b := matrix("b", 1, out, p.params[2*(i-1)+1])
		wrt = append(wrt, w, b)
		h = gorgonia.Must(gorgonia.BroadcastAdd(gorgonia.Must(gorgonia.Mul(h, w)), b, nil, []byte{0}))
		if i < len(p.widths)-1 {
			h = gorgonia.Must(gorgonia.Rectify(h))
		}
	}
	// loss = −(1/rows)·Σ onehot ⊙ log softmax(logits)
	logp := gorgonia.Must(gorgonia.Log(gorgonia.Must(gorgonia.SoftMax(h))))
	picked := gorgonia.Must(gorgonia.HadamardProd(logp, matrix("onehot", p.rows, classes, onehot)))
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
	for i, n := range wrt {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		want := gv.Data().([]float32)
		name := p.model.params()[i].Name
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
