package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

// AdamReference is one step, from 1, of torch.optim.Adam (decoupled false)
// or AdamW (true) in float64, as PyTorch's single-tensor implementation
// writes it: the L2 term joins the gradient, or w shrinks by 1 − lr·wd
// first; then the moments, their bias corrections and the update. It
// updates w, m and v.
func AdamReference(w, m, v, g []float64, lr, beta1, beta2, eps, wd float64, step int, decoupled bool) {
	bc1 := 1 - math.Pow(beta1, float64(step))
	bc2 := 1 - math.Pow(beta2, float64(step))
	for i := range w {
		gi := g[i]
		if decoupled {
			w[i] *= 1 - lr*wd
		} else {
			gi += wd * w[i]
		}
		m[i] = beta1*m[i] + (1-beta1)*gi
		v[i] = beta2*v[i] + (1-beta2)*gi*gi
		w[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
	}
}

// checkAdam checks three steps of Adam and of AdamW, a new gradient each
// step (so the bias corrections and the moments' mixing both show), then
// the guard: clear, the step runs; set, nothing changes.
func checkAdam(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	r := rng(21)
	const lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
	for _, n := range sizes() {
		for _, decoupled := range []bool{false, true} {
			w := randFloats(r, n)
			wantW, wantM, wantV := widen(w), make([]float64, n), make([]float64, n)
			wb, mb, vb := guarded(t, d, w), guarded(t, d, make([]float32, n)), guarded(t, d, make([]float32, n))
			unset := guarded(t, d, []int32{0})
			what := fmt.Sprintf("Adam n=%d decoupled=%v", n, decoupled)
			for step := 1; step <= 3; step++ {
				g := randFloats(r, n)
				gb := guarded(t, d, g)
				var guard device.Buffer // no guard, then a clear one
				if step > 1 {
					guard = unset
				}
				d.Adam(wb, gb, mb, vb, guard, n, device.NewAdamStep(lr, b1, b2, eps, wd, step, decoupled))
				AdamReference(wantW, wantM, wantV, widen(g), lr, b1, b2, eps, wd, step, decoupled)
				unchanged(t, d, what+" grad", gb, g)
			}
			closeEnough(t, what+" w", result[float32](t, d, what+" w", wb, n), wantW, 1e-6, 1e-5)
			closeEnough(t, what+" m", result[float32](t, d, what+" m", mb, n), wantM, 1e-6, 1e-5)
			closeEnough(t, what+" v", result[float32](t, d, what+" v", vb, n), wantV, 1e-7, 1e-5)
			unchanged(t, d, what+" guard", unset, []int32{0})

			w, m, v := result[float32](t, d, what+" w", wb, n), result[float32](t, d, what+" m", mb, n), result[float32](t, d, what+" v", vb, n)
			g, flag := randFloats(r, n), guarded(t, d, []int32{2})
			gb := guarded(t, d, g)
			d.Adam(wb, gb, mb, vb, flag, n, device.NewAdamStep(lr, b1, b2, eps, wd, 4, decoupled))
			what += " with a set guard"
			unchanged(t, d, what+" w", wb, w)
			unchanged(t, d, what+" m", mb, m)
			unchanged(t, d, what+" v", vb, v)
			unchanged(t, d, what+" grad", gb, g)
			unchanged(t, d, what+" guard", flag, []int32{2})
		}
	}
}
