package bench

import (
	"fmt"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// The training step of the reference MLP 784-512-512-10 (ReLU, softmax
// cross-entropy, momentum SGD, float32), timed on batchlab's CPU device and,
// as the Go peer, on Gorgonia's TapeMachine, side by side, and the steps of
// the CNNs LeNet-5 and cnn:32,64 on the CPU device:
//
//	go test -tags cpu -run '^$' -bench Step ./bench                  # pure-Go GEMM
//	go test -tags cpu,openblas -run '^$' -bench Step ./bench         # OpenBLAS
//
// Each step, in both engines, gathers the batch's pixels from a uint8
// dataset and scales them to [0,1], runs forward and backward and updates
// the parameters.

var stepBatches = []int{32, 128, 512, 2048}

const (
	stepFeatures = 28 * 28
	stepClasses  = 10
	stepLR       = 0.1
	stepMomentum = 0.9
)

// stepData is random MNIST-shaped data: what a step costs does not depend
// on the pixels.
func stepData(batch int) *data.Dataset {
	return data.Random(max(4*batch, 1024), 28, 28, stepClasses, 1)
}

// stepOrder is the sample order the benchmarks cycle through.
func stepOrder(n int) []int32 { return data.Permutation(n, 1, 1) }

// The CNNs' steps are timed at the batches compare_pytorch.sh compares
// (MODEL=lenet5), named batch=B/model=M/device=cpu.
var (
	cnnStepModels  = []string{"lenet5", "cnn:32,64"}
	cnnStepBatches = []int{32, 128, 512}
)

func BenchmarkStep(b *testing.B) {
	for _, batch := range stepBatches {
		b.Run(fmt.Sprintf("batch=%d/device=cpu", batch), func(b *testing.B) { benchBatchlab(b, batch, "") })
		b.Run(fmt.Sprintf("batch=%d/engine=gorgonia", batch), func(b *testing.B) { benchGorgonia(b, batch) })
	}
	for _, model := range cnnStepModels {
		for _, batch := range cnnStepBatches {
			b.Run(fmt.Sprintf("batch=%d/model=%s/device=cpu", batch, model), func(b *testing.B) { benchBatchlab(b, batch, model) })
		}
	}
}

// benchBatchlab times the step of model (engine.ParseModel; "": the
// reference MLP).
func benchBatchlab(b *testing.B, batch int, model string) {
	ds := stepData(batch)
	cfg := engine.DefaultConfig()
	if model != "" {
		var err error
		if cfg, err = cfg.WithModel(model); err != nil {
			b.Fatal(err)
		}
	}
	cfg.Batch, cfg.EvalBatch = batch, batch
	d := device.NewCPU()
	defer d.Close()
	tr, err := engine.NewTrainer(d, cfg, ds, ds)
	if err != nil {
		b.Fatal(err)
	}
	order := stepOrder(ds.Len())
	steps := ds.Len() / batch
	step := 0
	for b.Loop() {
		i := step % steps
		if err := tr.Step(i, order[i*batch:(i+1)*batch], nil, stepLR); err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		step++
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// gorgoniaMLP is the reference MLP as a Gorgonia graph, run by a
// TapeMachine and trained by Gorgonia's momentum solver.
type gorgoniaMLP struct {
	vm     gorgonia.VM
	solver gorgonia.Solver
	learn  gorgonia.Nodes
	x, y   *gorgonia.Node
	xv, yv *tensor.Dense
	pixels []float32 // x's backing: the batch, scaled to [0,1]
	onehot []float32 // y's backing: the labels, one-hot
	ds     *data.Dataset
}

func newGorgoniaMLP(b *testing.B, ds *data.Dataset, batch int) *gorgoniaMLP {
	g := gorgonia.NewGraph()
	m := &gorgoniaMLP{ds: ds, pixels: make([]float32, batch*stepFeatures), onehot: make([]float32, batch*stepClasses)}
	m.xv = tensor.New(tensor.WithShape(batch, stepFeatures), tensor.WithBacking(m.pixels))
	m.yv = tensor.New(tensor.WithShape(batch, stepClasses), tensor.WithBacking(m.onehot))
	m.x = gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(batch, stepFeatures), gorgonia.WithName("x"), gorgonia.WithValue(m.xv))
	m.y = gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(batch, stepClasses), gorgonia.WithName("y"), gorgonia.WithValue(m.yv))
	widths := []int{stepFeatures, 512, 512, stepClasses}
	h := m.x
	for i := 1; i < len(widths); i++ {
		in, out := widths[i-1], widths[i]
		w := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(in, out), gorgonia.WithName(fmt.Sprintf("w%d", i)), gorgonia.WithInit(gorgonia.GlorotU(1)))
		bias := gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(1, out), gorgonia.WithName(fmt.Sprintf("b%d", i)), gorgonia.WithInit(gorgonia.Zeroes()))
		m.learn = append(m.learn, w, bias)
		h = gorgonia.Must(gorgonia.BroadcastAdd(gorgonia.Must(gorgonia.Mul(h, w)), bias, nil, []byte{0}))
		if i < len(widths)-1 {
			h = gorgonia.Must(gorgonia.Rectify(h))
		}
	}
	// loss = −mean_rows Σ_cols onehot ⊙ log softmax(logits)
	logp := gorgonia.Must(gorgonia.Log(gorgonia.Must(gorgonia.SoftMax(h))))
	picked := gorgonia.Must(gorgonia.HadamardProd(logp, m.y))
	cost := gorgonia.Must(gorgonia.Neg(gorgonia.Must(gorgonia.Mean(gorgonia.Must(gorgonia.Sum(picked, 1))))))
	if _, err := gorgonia.Grad(cost, m.learn...); err != nil {
		b.Fatal(err)
	}
	m.vm = gorgonia.NewTapeMachine(g, gorgonia.BindDualValues(m.learn...))
	m.solver = gorgonia.NewMomentum(gorgonia.WithLearnRate(stepLR), gorgonia.WithMomentum(stepMomentum))
	return m
}

// step trains on the samples at indices, with the same data preparation as
// batchlab's pageable loader: gather, scale to [0,1], one-hot labels.
func (m *gorgoniaMLP) step(b *testing.B, indices []int32) {
	clear(m.onehot)
	for i, idx := range indices {
		src := m.ds.Images[int(idx)*stepFeatures : (int(idx)+1)*stepFeatures]
		dst := m.pixels[i*stepFeatures : (i+1)*stepFeatures]
		for j, v := range src {
			dst[j] = data.Normalize(v)
		}
		m.onehot[i*stepClasses+int(m.ds.Labels[idx])] = 1
	}
	if err := gorgonia.Let(m.x, m.xv); err != nil {
		b.Fatal(err)
	}
	if err := gorgonia.Let(m.y, m.yv); err != nil {
		b.Fatal(err)
	}
	if err := m.vm.RunAll(); err != nil {
		b.Fatal(err)
	}
	if err := m.solver.Step(gorgonia.NodesToValueGrads(m.learn)); err != nil {
		b.Fatal(err)
	}
	m.vm.Reset()
}

func benchGorgonia(b *testing.B, batch int) {
	ds := stepData(batch)
	m := newGorgoniaMLP(b, ds, batch)
	defer m.vm.Close()
	order := stepOrder(ds.Len())
	steps := ds.Len() / batch
	step := 0
	for b.Loop() {
		i := step % steps
		m.step(b, order[i*batch:(i+1)*batch])
		step++
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
