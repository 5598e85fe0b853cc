package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

// bnRef is ghost batch normalization in float64: y for every row, and each
// group's mean and 1/√(var+eps).
func bnRef(x, gamma, beta []float64, rows, cols, ghost int, eps float64) (y, mean, invStd []float64) {
	groups := device.GhostGroups(rows, ghost)
	size := groupSize(rows, ghost)
	y = make([]float64, rows*cols)
	mean, invStd = make([]float64, groups*cols), make([]float64, groups*cols)
	for k := range groups {
		lo, hi := k*size, min((k+1)*size, rows)
		n := float64(hi - lo)
		for j := range cols {
			var s, sq float64
			for i := lo; i < hi; i++ {
				s += x[i*cols+j]
			}
			m := s / n
			for i := lo; i < hi; i++ {
				sq += (x[i*cols+j] - m) * (x[i*cols+j] - m)
			}
			is := 1 / math.Sqrt(sq/n+eps)
			mean[k*cols+j], invStd[k*cols+j] = m, is
			for i := lo; i < hi; i++ {
				y[i*cols+j] = gamma[j]*(x[i*cols+j]-m)*is + beta[j]
			}
		}
	}
	return y, mean, invStd
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// checkBatchNorm checks ghost batch normalization, forward and backward, on a
// device that implements device.BatchNormer. The backward pass is checked
// against central differences of the float64 reference forward pass.
func checkBatchNorm(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	bn, ok := d.(device.BatchNormer)
	if !ok {
		t.Skipf("the %s device does not implement batch normalization", d.Info().Kind)
	}
	const eps, momentum = 1e-5, 0.1
	r := rng(14)
	for _, c := range [][3]int{{8, 3, 0}, {31, 5, 8}, {64, 17, 16}, {7, 4, 1000}, {10, 2, 3}, {40, 100, 16}} {
		rows, cols, ghost := c[0], c[1], c[2]
		what := fmt.Sprintf("BatchNorm %dx%d ghost %d", rows, cols, ghost)
		groups := device.GhostGroups(rows, ghost)
		x, gamma, beta, dy := randFloats(r, rows*cols), randFloats(r, cols), randFloats(r, cols), randFloats(r, rows*cols)
		wantY, wantMean, wantInv := bnRef(widen(x), widen(gamma), widen(beta), rows, cols, ghost, eps)

		xb, gb, bb, dyb := guarded(t, d, x), guarded(t, d, gamma), guarded(t, d, beta), guarded(t, d, dy)
		yb := output[float32](t, d, rows*cols)
		meanB, invB := output[float32](t, d, groups*cols), output[float32](t, d, groups*cols)
		rmB, rvB := guarded(t, d, make([]float32, cols)), guarded(t, d, ones(cols))
		bn.BatchNormTrain(yb, xb, gb, bb, meanB, invB, rmB, rvB, rows, cols, ghost, momentum, eps)
		train := what + " BatchNormTrain"
		closeEnough(t, train+" y", result[float32](t, d, train+" y", yb, rows*cols), wantY, 1e-4, 1e-4)
		mean, invStd := result[float32](t, d, train+" mean", meanB, groups*cols), result[float32](t, d, train+" invStd", invB, groups*cols)
		closeEnough(t, train+" mean", mean, wantMean, 1e-5, 1e-5)
		closeEnough(t, train+" invStd", invStd, wantInv, 1e-4, 1e-4)
		unchanged(t, d, train+" x", xb, x)
		unchanged(t, d, train+" gamma", gb, gamma)
		unchanged(t, d, train+" beta", bb, beta)

		// Running statistics: one momentum update per group, in order.
		size := groupSize(rows, ghost)
		wantRM, wantRV := make([]float64, cols), ones64(cols)
		for k := range groups {
			lo, hi := k*size, min((k+1)*size, rows)
			n := float64(hi - lo)
			for j := range cols {
				m := wantMean[k*cols+j]
				var sq float64
				for i := lo; i < hi; i++ {
					sq += (float64(x[i*cols+j]) - m) * (float64(x[i*cols+j]) - m)
				}
				wantRM[j] = (1-momentum)*wantRM[j] + momentum*m
				wantRV[j] = (1-momentum)*wantRV[j] + momentum*sq/math.Max(n-1, 1)
			}
		}
		rm, rv := result[float32](t, d, train+" runMean", rmB, cols), result[float32](t, d, train+" runVar", rvB, cols)
		closeEnough(t, train+" runMean", rm, wantRM, 1e-5, 1e-4)
		closeEnough(t, train+" runVar", rv, wantRV, 1e-5, 1e-4)

		// Inference uses the running statistics.
		yb = output[float32](t, d, rows*cols)
		bn.BatchNormInfer(yb, xb, gb, bb, rmB, rvB, rows, cols, eps)
		infer := what + " BatchNormInfer"
		wantInfer := make([]float64, rows*cols)
		for i := range rows {
			for j := range cols {
				wantInfer[i*cols+j] = float64(gamma[j])*(float64(x[i*cols+j])-float64(rm[j]))/math.Sqrt(float64(rv[j])+eps) + float64(beta[j])
			}
		}
		closeEnough(t, infer+" y", result[float32](t, d, infer+" y", yb, rows*cols), wantInfer, 1e-4, 1e-4)
		for _, in := range []struct {
			name string
			b    device.Buffer
			host []float32
		}{{"x", xb, x}, {"gamma", gb, gamma}, {"beta", bb, beta}, {"runMean", rmB, rm}, {"runVar", rvB, rv}} {
			unchanged(t, d, infer+" "+in.name, in.b, in.host)
		}

		// Backward: L = Σ dy·y, so dL/dx, dL/dγ, dL/dβ by central differences.
		dxb, dgb, dbb := output[float32](t, d, rows*cols), output[float32](t, d, cols), output[float32](t, d, cols)
		bn.BatchNormBackward(dxb, dgb, dbb, dyb, xb, gb, meanB, invB, rows, cols, ghost)
		backward := what + " BatchNormBackward"
		loss := func(x, gamma, beta []float64) float64 {
			y, _, _ := bnRef(x, gamma, beta, rows, cols, ghost, eps)
			var s float64
			for i, v := range y {
				s += float64(dy[i]) * v
			}
			return s
		}
		xs, gs, bs := widen(x), widen(gamma), widen(beta)
		fd := func(v []float64) []float64 {
			const h = 1e-6
			g := make([]float64, len(v))
			for i := range v {
				old := v[i]
				v[i] = old + h
				up := loss(xs, gs, bs)
				v[i] = old - h
				down := loss(xs, gs, bs)
				v[i] = old
				g[i] = (up - down) / (2 * h)
			}
			return g
		}
		closeEnough(t, backward+" dx", result[float32](t, d, backward+" dx", dxb, rows*cols), fd(xs), 1e-3, 1e-3)
		closeEnough(t, backward+" dgamma", result[float32](t, d, backward+" dgamma", dgb, cols), fd(gs), 1e-3, 1e-3)
		closeEnough(t, backward+" dbeta", result[float32](t, d, backward+" dbeta", dbb, cols), fd(bs), 1e-3, 1e-3)
		for _, in := range []struct {
			name string
			b    device.Buffer
			host []float32
		}{{"dy", dyb, dy}, {"x", xb, x}, {"gamma", gb, gamma}, {"mean", meanB, mean}, {"invStd", invB, invStd}} {
			unchanged(t, d, backward+" "+in.name, in.b, in.host)
		}
	}
}

// groupSize is the number of rows of each ghost group.
func groupSize(rows, ghost int) int {
	if ghost > 0 && ghost < rows {
		return ghost
	}
	return rows
}

func ones(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	return x
}

func ones64(n int) []float64 { return widen(ones(n)) }
