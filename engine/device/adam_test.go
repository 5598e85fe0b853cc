package device_test

import (
	"math"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/device/devicetest"
)

// adamCase is three steps of torch.optim.Adam (L2) or AdamW on fixed
// numbers: lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.1. The
// expected weights and moments were computed in Python floats (float64)
// by PyTorch's single-tensor algorithm, line by line (exp_avg.lerp_,
// exp_avg_sq.mul_.addcmul_, bias corrections, param.addcdiv_; AdamW's
// param.mul_(1 − lr·wd) first). PyTorch itself was not available here.
// The first step is checkable by hand: m̂ = g, v̂ = g², so w moves by
// lr·g/(|g| + eps); AdamW's last weight has no gradient and only decays,
// 3·(1 − 0.001).
type adamCase struct {
	decoupled bool
	w         [3][5]float64 // after each step
	m, v      [5]float64    // after the last
}

var (
	adamW0    = []float64{1, -2, 0.5, 0, 3}
	adamGrads = [3][]float64{{0.5, -1, 0.25, 2, 0}, {-0.5, 0.1, 0.25, 1, 0}, {0.2, 0.3, -0.4, -1, 1e-3}}
	adamCases = []adamCase{
		{false, [3][5]float64{
			{0.9900000001666667, -1.9900000000833333, 0.4900000003333333, -0.009999999950000001, 2.990000000333333},
			{0.9885662224165238, -1.9827099890591526, 0.4800008849079597, -0.019320331878779115, 2.9800008849079593},
			{0.9850964351817487, -1.9776331663459166, 0.47814299974476265, -0.02327937481914788, 2.9700020369594347}},
			[5]float64{0.04239566222566522, -0.09593709989134151, 0.016010008852079594, 0.1517167966816622, 0.08111000885207958},
			[5]float64{0.000609235839644337, 0.0014572614286652498, 0.00030303562672240114, 0.005992874798137981, 0.00026853274193741746}},
		{true, [3][5]float64{
			{0.9890000002, -1.9880000001, 0.48950000039999997, -0.009999999950000001, 2.997},
			{0.9885373159787474, -1.9800855150407772, 0.47901050079960006, -0.01931179627919896, 2.9940029999999997},
			{0.9862004037506759, -1.9755449338535145, 0.478202314982018, -0.023259536847552147, 2.984620971594543}},
			[5]float64{0.015499999999999993, -0.041999999999999996, 0.0027499999999999955, 0.15199999999999997, 9.999999999999998e-05},
			[5]float64{0.0005392502500000004, 0.001097991000000001, 0.0002848125625000003, 0.0059910040000000055, 1.000000000000001e-09}},
	}
)

const adamLR, adamBeta1, adamBeta2, adamEps, adamWD = 0.01, 0.9, 0.999, 1e-8, 0.1

func near(got, want, atol, rtol float64) bool {
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// TestAdamPyTorchNumbers runs the CPU device's Adam and AdamW on the fixed
// numbers, and the conformance suite's float64 reference too (which the
// CUDA device is checked against).
func TestAdamPyTorchNumbers(t *testing.T) {
	d := device.NewCPU()
	defer d.Close()
	for _, c := range adamCases {
		name := "Adam"
		if c.decoupled {
			name = "AdamW"
		}
		n := len(adamW0)
		w, m, v, g := alloc(t, d, n), alloc(t, d, n), alloc(t, d, n), alloc(t, d, n)
		upload(t, d, w, narrow(adamW0))
		d.Zero(m)
		d.Zero(v)
		rw, rm, rv := append([]float64(nil), adamW0...), make([]float64, n), make([]float64, n)
		for step := 1; step <= 3; step++ {
			upload(t, d, g, narrow(adamGrads[step-1]))
			d.Adam(w, g, m, v, nil, n, device.NewAdamStep(adamLR, adamBeta1, adamBeta2, adamEps, adamWD, step, c.decoupled))
			devicetest.AdamReference(rw, rm, rv, adamGrads[step-1], adamLR, adamBeta1, adamBeta2, adamEps, adamWD, step, c.decoupled)
			got := download(t, d, w, n)
			for i := range n {
				// float32: one ulp of w is 1e-7 to 2e-7.
				if !near(float64(got[i]), c.w[step-1][i], 1e-6, 1e-6) {
					t.Errorf("%s step %d: w[%d] = %.9g, PyTorch's rule gives %.9g", name, step, i, got[i], c.w[step-1][i])
				}
				if !near(rw[i], c.w[step-1][i], 0, 1e-12) {
					t.Errorf("%s step %d: AdamReference w[%d] = %.17g, PyTorch's rule gives %.17g", name, step, i, rw[i], c.w[step-1][i])
				}
			}
		}
		for _, s := range []struct {
			what string
			b    device.Buffer
			want [5]float64
			ref  []float64
		}{{"m", m, c.m, rm}, {"v", v, c.v, rv}} {
			got := download(t, d, s.b, n)
			for i := range n {
				if !near(float64(got[i]), s.want[i], 1e-9, 1e-5) || !near(s.ref[i], s.want[i], 0, 1e-12) {
					t.Errorf("%s: %s[%d] = %.9g (reference %.17g), PyTorch's rule gives %.17g", name, s.what, i, got[i], s.ref[i], s.want[i])
				}
			}
		}
	}
}

// TestNewAdamStep checks the bias corrections on numbers worked by hand.
func TestNewAdamStep(t *testing.T) {
	s := device.NewAdamStep(0.001, 0.9, 0.999, 1e-8, 0.01, 1, false)
	if !near(float64(s.StepSize), 0.01, 0, 1e-7) || !near(float64(s.BiasCorrection2Sqrt), math.Sqrt(0.001), 0, 1e-7) ||
		s.L2 != 0.01 || s.Decay != 1 {
		t.Errorf("Adam step 1: %+v, want step size 0.001/0.1, √0.001, L2 0.01, decay 1", s)
	}
	s = device.NewAdamStep(0.001, 0.9, 0.999, 1e-8, 0.01, 2, true)
	if !near(float64(s.StepSize), 0.001/0.19, 0, 1e-7) || !near(float64(s.BiasCorrection2Sqrt), math.Sqrt(1-0.998001), 0, 1e-6) ||
		s.L2 != 0 || s.Decay != float32(1-0.001*0.01) {
		t.Errorf("AdamW step 2: %+v, want step size 0.001/0.19, √0.001999, L2 0, decay 0.99999", s)
	}
}

func alloc(t *testing.T, d device.Device, n int) device.Buffer {
	t.Helper()
	b, err := d.Alloc(device.Float32, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func upload(t *testing.T, d device.Device, b device.Buffer, x []float32) {
	t.Helper()
	if err := device.Upload(d, b, x); err != nil {
		t.Fatal(err)
	}
}

func download(t *testing.T, d device.Device, b device.Buffer, n int) []float32 {
	t.Helper()
	x := make([]float32, n)
	if err := device.Download(d, x, b); err != nil {
		t.Fatal(err)
	}
	return x
}

func narrow(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}
