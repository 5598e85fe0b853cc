package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradCNN is a small CNN with the awkward parts in it: two channels in,
// padding 1 and 0, a 9×9 map that pools to 4×4 (floor), a second stage
// that ends in a 1×1 map, and a hidden Linear.
func gradCNN() cnnArch {
	return cnnArch{Channels: 2, Side: 9, Convs: []convStage{{3, 3, 1}, {4, 3, 0}}, Hidden: []int{6}, Classes: 3}
}

const gradCNNRows = 5

func newCNNGradProblem(t *testing.T, a cnnArch) *gradProblem {
	return newGradProblemOf(t, a, gradCNNRows, a.Channels*a.Side*a.Side, a.Classes)
}

// TestCNNGradientsMatchGorgonia builds the same CNN in Gorgonia (its
// Conv2d, MaxPool2D and Rectify), with the same weights, and compares our
// backward pass, layer by layer, with its symbolic differentiation.
func TestCNNGradientsMatchGorgonia(t *testing.T) {
	a := gradCNN()
	p := newCNNGradProblem(t, a)
	g := gorgonia.NewGraph()
	h := gorgoniaTensor(g, "x", p.x, p.rows, a.Channels, a.Side, a.Side)
	var wrt gorgonia.Nodes
	convs, flat := a.stageShapes(p.rows)
	for i, s := range convs {
		f := a.Convs[i].Filters
		w := gorgoniaTensor(g, "w", p.params[2*i], f, s.C, s.KH, s.KW)
		b := gorgoniaTensor(g, "b", p.params[2*i+1], f)
		wrt = append(wrt, w, b)
		y, err := gorgonia.Conv2d(h, w, tensor.Shape{s.KH, s.KW}, []int{s.Pad, s.Pad}, []int{s.Stride, s.Stride}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if y, err = gorgonia.BroadcastAdd(y, b, nil, []byte{0, 2, 3}); err != nil {
			t.Fatal(err)
		}
		if h, err = gorgonia.MaxPool2D(gorgonia.Must(gorgonia.Rectify(y)), tensor.Shape{poolSize, poolSize}, []int{0, 0}, []int{poolSize, poolSize}); err != nil {
			t.Fatal(err)
		}
	}
	h = gorgonia.Must(gorgonia.Reshape(h, tensor.Shape{p.rows, flat}))
	widths := append(append([]int{flat}, a.Hidden...), a.Classes)
	for i := 1; i < len(widths); i++ {
		k := 2 * (len(convs) + i - 1)
		var err error
		if h, err = gorgoniaLinear(g, h, &wrt, widths[i-1], widths[i], p.params[k], p.params[k+1]); err != nil {
			t.Fatal(err)
		}
		if i < len(widths)-1 {
			h = gorgonia.Must(gorgonia.Rectify(h))
		}
	}
	compareWithGorgonia(t, p, g, h, wrt)
}

// TestCNNGradientsMatchFiniteDifferences compares our float32 gradients
// with central differences of a float64 reference of the same CNN
// (cnnLoss64): in float64 a step of 1e-5 is far below the distance to the
// nearest ReLU or pooling kink almost everywhere, which float32's 5e-3 step
// is not (with it, conv1's gradients were off by up to 0.01 from kinks
// crossed). Tolerance 1e-4 + 1% of the gradient: float32's rounding in our
// backward pass. For the plain CNN, with batch norm over channels and with
// ghost batches of 2 images.
func TestCNNGradientsMatchFiniteDifferences(t *testing.T) {
	for _, bn := range []struct {
		on    bool
		ghost int
	}{{false, 0}, {true, 0}, {true, 2}} {
		t.Run(fmt.Sprintf("batchnorm=%v/ghost=%d", bn.on, bn.ghost), func(t *testing.T) {
			a := gradCNN()
			a.BatchNorm, a.GhostBatch = bn.on, bn.ghost
			p := newCNNGradProblem(t, a)
			x := widen(p.x)
			ps := make([][]float64, len(p.params))
			for i := range ps {
				ps[i] = widen(p.params[i])
			}
			if got, want := float64(p.loss(t, false)), cnnLoss64(a, ps, x, p.labels, p.rows); math.Abs(got-want) > 1e-5 {
				t.Fatalf("loss %g, the float64 reference's %g", got, want)
			}
			const h = 1e-5
			r := rand.New(rand.NewPCG(1, 2))
			for i, param := range p.model.params() {
				for range 8 {
					j := r.IntN(param.Size())
					v := ps[i][j]
					ps[i][j] = v + h
					up := cnnLoss64(a, ps, x, p.labels, p.rows)
					ps[i][j] = v - h
					down := cnnLoss64(a, ps, x, p.labels, p.rows)
					ps[i][j] = v
					fd, an := (up-down)/(2*h), float64(p.grads[i][j])
					if math.Abs(fd-an) > 1e-4+0.01*math.Abs(fd) {
						t.Errorf("%s[%d]: gradient %g, finite difference %g", param.Name, j, an, fd)
					}
				}
			}
		})
	}
}

func widen(xs []float32) []float64 {
	out := make([]float64, len(xs))
	for i, v := range xs {
		out[i] = float64(v)
	}
	return out
}

// cnnLoss64 is the mean softmax cross-entropy of the CNN a, with the
// parameters ps in Params order, on rows images x, by plain float64 loops
// written from the definitions (batch norm in training mode, PyTorch's eps).
func cnnLoss64(a cnnArch, ps [][]float64, x []float64, labels []int32, rows int) float64 {
	next := func() []float64 { p := ps[0]; ps = ps[1:]; return p }
	c, side := a.Channels, a.Side
	for _, st := range a.Convs {
		w, b := next(), next()
		f, k, out := st.Filters, st.Kernel, side+2*st.Pad-st.Kernel+1
		y := make([]float64, rows*f*out*out)
		for n := range rows {
			for o := range f {
				for i := range out {
					for j := range out {
						sum := b[o]
						for ci := range c {
							for di := range k {
								for dj := range k {
									h, v := i+di-st.Pad, j+dj-st.Pad
									if h >= 0 && h < side && v >= 0 && v < side {
										sum += w[((o*c+ci)*k+di)*k+dj] * x[((n*c+ci)*side+h)*side+v]
									}
								}
							}
						}
						y[((n*f+o)*out+i)*out+j] = sum
					}
				}
			}
		}
		if a.BatchNorm {
			batchNorm64(y, next(), next(), rows, f, out*out, a.GhostBatch)
		}
		pooled := out / poolSize
		x = make([]float64, rows*f*pooled*pooled)
		for n := range rows {
			for o := range f {
				plane := y[(n*f+o)*out*out:]
				for i := range pooled {
					for j := range pooled {
						best := math.Inf(-1)
						for di := range poolSize {
							for dj := range poolSize {
								best = math.Max(best, math.Max(plane[(i*poolSize+di)*out+j*poolSize+dj], 0)) // ReLU, then pool
							}
						}
						x[((n*f+o)*pooled+i)*pooled+j] = best
					}
				}
			}
		}
		c, side = f, pooled
	}
	widths := append(append([]int{c * side * side}, a.Hidden...), a.Classes)
	for l := 1; l < len(widths); l++ {
		in, out := widths[l-1], widths[l]
		w, b := next(), next()
		y := make([]float64, rows*out)
		for n := range rows {
			for o := range out {
				sum := b[o]
				for i := range in {
					sum += x[n*in+i] * w[i*out+o]
				}
				if l < len(widths)-1 {
					sum = math.Max(sum, 0)
				}
				y[n*out+o] = sum
			}
		}
		x = y
	}
	var loss float64
	for n := range rows {
		logits := x[n*a.Classes:][:a.Classes]
		top := slices.Max(logits)
		var z float64
		for _, v := range logits {
			z += math.Exp(v - top)
		}
		loss += math.Log(z) + top - logits[labels[n]]
	}
	return loss / float64(rows)
}

// batchNorm64 normalizes each channel of the rows×channels×pixels y in
// place over groups of ghost images (all rows when ghost is 0) with the
// biased variance, then scales by gamma and shifts by beta.
func batchNorm64(y, gamma, beta []float64, rows, channels, pixels, ghost int) {
	if ghost <= 0 {
		ghost = rows
	}
	for lo := 0; lo < rows; lo += ghost {
		hi := min(lo+ghost, rows)
		for c := range channels {
			var sum, sq float64
			for n := lo; n < hi; n++ {
				for _, v := range y[(n*channels+c)*pixels:][:pixels] {
					sum += v
				}
			}
			cnt := float64((hi - lo) * pixels)
			mean := sum / cnt
			for n := lo; n < hi; n++ {
				for _, v := range y[(n*channels+c)*pixels:][:pixels] {
					sq += (v - mean) * (v - mean)
				}
			}
			inv := 1 / math.Sqrt(sq/cnt+bnEps)
			for n := lo; n < hi; n++ {
				plane := y[(n*channels+c)*pixels:][:pixels]
				for i, v := range plane {
					plane[i] = gamma[c]*(v-mean)*inv + beta[c]
				}
			}
		}
	}
}
