package device

import "math"

// Batch normalization on the CPU: plain per-column loops over each ghost
// group, statistics in float64, the reference for other devices.

var _ BatchNormer = (*CPU)(nil)

func (d *CPU) BatchNormTrain(y, x, gamma, beta, mean, invStd, runMean, runVar Buffer, rows, cols, ghost int, momentum, eps float32) {
	groups := GhostGroups(rows, ghost)
	bs, ok := d.bufs("BatchNormTrain", []int{rows, cols},
		f32("y", y, rows*cols), f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("beta", beta, cols),
		f32("mean", mean, groups*cols), f32("invStd", invStd, groups*cols), f32("runMean", runMean, cols), f32("runVar", runVar, cols))
	if !ok {
		return
	}
	ys, xs, g, b, mu, inv, rm, rv := bs[0].f32, bs[1].f32, bs[2].f32, bs[3].f32, bs[4].f32, bs[5].f32, bs[6].f32, bs[7].f32
	size := ghostSize(rows, ghost)
	for k := 0; k < groups; k++ {
		lo, hi := k*size, min((k+1)*size, rows)
		n := float64(hi - lo)
		for j := 0; j < cols; j++ {
			var sum float64
			for i := lo; i < hi; i++ {
				sum += float64(xs[i*cols+j])
			}
			m := sum / n
			var sq float64
			for i := lo; i < hi; i++ {
				dv := float64(xs[i*cols+j]) - m
				sq += dv * dv
			}
			is := 1 / math.Sqrt(sq/n+float64(eps))
			mu[k*cols+j], inv[k*cols+j] = float32(m), float32(is)
			for i := lo; i < hi; i++ {
				ys[i*cols+j] = g[j]*float32((float64(xs[i*cols+j])-m)*is) + b[j]
			}
			unbiased := sq / math.Max(n-1, 1)
			rm[j] = (1-momentum)*rm[j] + momentum*float32(m)
			rv[j] = (1-momentum)*rv[j] + momentum*float32(unbiased)
		}
	}
}

func (d *CPU) BatchNormInfer(y, x, gamma, beta, runMean, runVar Buffer, rows, cols int, eps float32) {
	bs, ok := d.bufs("BatchNormInfer", []int{rows, cols},
		f32("y", y, rows*cols), f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("beta", beta, cols),
		f32("runMean", runMean, cols), f32("runVar", runVar, cols))
	if !ok {
		return
	}
	ys, xs, g, b, rm, rv := bs[0].f32, bs[1].f32, bs[2].f32, bs[3].f32, bs[4].f32, bs[5].f32
	for j := 0; j < cols; j++ {
		is := 1 / math.Sqrt(float64(rv[j])+float64(eps))
		for i := 0; i < rows; i++ {
			ys[i*cols+j] = g[j]*float32((float64(xs[i*cols+j])-float64(rm[j]))*is) + b[j]
		}
	}
}

func (d *CPU) BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd Buffer, rows, cols, ghost int) {
	groups := GhostGroups(rows, ghost)
	bs, ok := d.bufs("BatchNormBackward", []int{rows, cols},
		f32("dx", dx, rows*cols), f32("dgamma", dgamma, cols), f32("dbeta", dbeta, cols), f32("dy", dy, rows*cols),
		f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("mean", mean, groups*cols), f32("invStd", invStd, groups*cols))
	if !ok {
		return
	}
	dxs, dg, db, dys, xs, g, mu, inv := bs[0].f32, bs[1].f32, bs[2].f32, bs[3].f32, bs[4].f32, bs[5].f32, bs[6].f32, bs[7].f32
	size := ghostSize(rows, ghost)
	clear(dg[:cols])
	clear(db[:cols])
	for k := 0; k < groups; k++ {
		lo, hi := k*size, min((k+1)*size, rows)
		n := float64(hi - lo)
		for j := 0; j < cols; j++ {
			m, is := float64(mu[k*cols+j]), float64(inv[k*cols+j])
			// With x̂ = (x−μ)·invStd and g = dy·γ:
			// dx = invStd/n · (n·g − Σg − x̂·Σ(g·x̂)).
			var sumDy, sumDyXhat float64
			for i := lo; i < hi; i++ {
				dyv := float64(dys[i*cols+j])
				sumDy += dyv
				sumDyXhat += dyv * (float64(xs[i*cols+j]) - m) * is
			}
			db[j] += float32(sumDy)
			dg[j] += float32(sumDyXhat)
			gj := float64(g[j])
			for i := lo; i < hi; i++ {
				xhat := (float64(xs[i*cols+j]) - m) * is
				dxs[i*cols+j] = float32(gj * is / n * (n*float64(dys[i*cols+j]) - sumDy - xhat*sumDyXhat))
			}
		}
	}
}
