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

// BatchNorm checks ghost batch normalization, forward and backward, on a
// device that implements device.BatchNormer. The backward pass is checked
// against central differences of the float64 reference forward pass.
func BatchNorm(t *testing.T, newDevice NewDevice) {
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

		xb, gb, bb, dyb := upload(t, d, device.Float32, x), upload(t, d, device.Float32, gamma), upload(t, d, device.Float32, beta), upload(t, d, device.Float32, dy)
		yb, _ := d.Alloc(device.Float32, rows*cols)
		meanB, _ := d.Alloc(device.Float32, groups*cols)
		invB, _ := d.Alloc(device.Float32, groups*cols)
		rmB, _ := d.Alloc(device.Float32, cols)
		rvB := upload(t, d, device.Float32, ones(cols))
		bn.BatchNormTrain(yb, xb, gb, bb, meanB, invB, rmB, rvB, rows, cols, ghost, momentum, eps)
		closeEnough(t, what+" y", download[float32](t, d, yb, rows*cols), wantY, 1e-4, 1e-4)
		closeEnough(t, what+" mean", download[float32](t, d, meanB, groups*cols), wantMean, 1e-5, 1e-5)
		closeEnough(t, what+" invStd", download[float32](t, d, invB, groups*cols), wantInv, 1e-4, 1e-4)

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
		closeEnough(t, what+" running mean", download[float32](t, d, rmB, cols), wantRM, 1e-5, 1e-4)
		closeEnough(t, what+" running var", download[float32](t, d, rvB, cols), wantRV, 1e-5, 1e-4)

		// Inference uses the running statistics.
		bn.BatchNormInfer(yb, xb, gb, bb, rmB, rvB, rows, cols, eps)
		rm, rv := download[float32](t, d, rmB, cols), download[float32](t, d, rvB, cols)
		wantInfer := make([]float64, rows*cols)
		for i := range rows {
			for j := range cols {
				wantInfer[i*cols+j] = float64(gamma[j])*(float64(x[i*cols+j])-float64(rm[j]))/math.Sqrt(float64(rv[j])+eps) + float64(beta[j])
			}
		}
		closeEnough(t, what+" inference", download[float32](t, d, yb, rows*cols), wantInfer, 1e-4, 1e-4)

		// Backward: L = Σ dy·y, so dL/dx, dL/dγ, dL/dβ by central differences.
		dxb, _ := d.Alloc(device.Float32, rows*cols)
		dgb, _ := d.Alloc(device.Float32, cols)
		dbb, _ := d.Alloc(device.Float32, cols)
		bn.BatchNormBackward(dxb, dgb, dbb, dyb, xb, gb, meanB, invB, rows, cols, ghost)
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
		closeEnough(t, what+" dx", download[float32](t, d, dxb, rows*cols), fd(xs), 1e-3, 1e-3)
		closeEnough(t, what+" dgamma", download[float32](t, d, dgb, cols), fd(gs), 1e-3, 1e-3)
		closeEnough(t, what+" dbeta", download[float32](t, d, dbb, cols), fd(bs), 1e-3, 1e-3)
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
