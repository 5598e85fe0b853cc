package engine

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// TestHessianTopMatchesExplicitHessian: on softmax regression (no hidden
// layer) over 4 features and 3 classes, 15 parameters, the Hessian can be
// written out, column by column, from central differences of gradients
// along each basis vector; its largest eigenvalue (gonum's EigenSym) is
// what power iteration on Hessian-vector products must find.
func TestHessianTopMatchesExplicitHessian(t *testing.T) {
	const n, features, classes = 40, 4, 3
	rng := rand.New(rand.NewPCG(3, 4))
	ds := &data.Dataset{Name: "tiny", Rows: 2, Cols: 2, Classes: classes, Images: make([]uint8, n*features), Labels: make([]uint8, n)}
	for i := range ds.Images {
		ds.Images[i] = uint8(rng.IntN(256))
	}
	for i := range ds.Labels {
		ds.Labels[i] = uint8(rng.IntN(classes))
	}
	cfg := Config{Hidden: nil, Batch: 8, LR: 0.1, Epochs: 1, Seed: 1, EvalBatch: n}
	tr, err := NewTrainer(device.NewCPU(), cfg, ds, ds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := HessianTop(tr, HessianConfig{Samples: n, Iterations: 100, Epsilon: 1e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}

	p, err := newProbe(tr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w0, err := tr.Model.ReadParams(tr.d, false)
	if err != nil {
		t.Fatal(err)
	}
	idx := sampleIndices(n, n, 1, 0)
	var flat [][2]int // parameter i as (tensor, index)
	for a := range w0 {
		for b := range w0[a] {
			flat = append(flat, [2]int{a, b})
		}
	}
	const h = 1e-2
	gradAt := func(k int, step float64) []float64 {
		w := cloneParams32(w0)
		w[flat[k][0]][flat[k][1]] += float32(step)
		if err := tr.Model.writeParams(tr.d, w); err != nil {
			t.Fatal(err)
		}
		_, g, err := p.LossAndGradient(idx)
		if err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, gs := range g {
			out = append(out, gs...)
		}
		return out
	}
	m := len(flat)
	cols := make([][]float64, m) // cols[i][j] ≈ ∂²f/∂w_i∂w_j
	for i := range m {
		plus, minus := gradAt(i, h), gradAt(i, -h)
		cols[i] = make([]float64, m)
		for j := range m {
			cols[i][j] = (plus[j] - minus[j]) / (2 * h)
		}
	}
	H := mat.NewSymDense(m, nil)
	for i := range m {
		for j := i; j < m; j++ {
			H.SetSym(i, j, (cols[i][j]+cols[j][i])/2) // finite differences are not exactly symmetric
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(H, false) {
		t.Fatal("eigendecomposition failed")
	}
	vals := eig.Values(nil)
	want := vals[len(vals)-1]
	t.Logf("λ_max: power iteration %.6g, explicit Hessian %.6g (smallest %.3g)", got, want, vals[0])
	if !(want > 0) || math.Abs(got-want) > 0.01*want {
		t.Errorf("HessianTop = %g, the explicit Hessian's largest eigenvalue is %g", got, want)
	}
}
