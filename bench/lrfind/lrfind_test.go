package lrfind

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// synthetic is a range test's loss at log₁₀ LR x: a plateau at 2.3 that
// falls, fastest at x = steepest, to a floor near 0.2 and, past x = 0,
// blows up. noise is relative, per step.
func synthetic(x, steepest float64) float64 {
	fall := 2.1 / (1 + math.Exp(-(x-steepest)/0.35))
	return 2.3 - fall + math.Exp(4*x)
}

// sweepOf feeds a curve with the synthetic losses of s, with relative noise
// and the spikes given (step → loss), until it stops.
func sweepOf(s Sweep, steepest, noise float64, spikes map[int]float64) ([]Point, string) {
	c := curve{Sweep: s}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range s.Steps {
		lr := s.lr(i)
		loss := synthetic(math.Log10(lr), steepest) * (1 + noise*r.NormFloat64())
		if v, ok := spikes[i+1]; ok {
			loss = v
		}
		if stop := c.add(lr, loss); stop != "" {
			return c.points, stop
		}
	}
	return c.points, ""
}

// rawSteepest is the naive rule: the steepest drop between neighbouring raw
// losses, per step.
func rawSteepest(ps []Point) float64 {
	best, lr := 0.0, 0.0
	for i := 1; i < len(ps); i++ {
		if d := ps[i].Loss - ps[i-1].Loss; d < best {
			best, lr = d, ps[i].LR
		}
	}
	return lr
}

// TestSuggestionOnSyntheticCurves: on noisy curves whose steepest descent
// is known, with an early spike (one batch at a loss of 9, as a bad batch or
// the first steps' transient gives) and a later one, the suggestion lands
// within a factor 1.5 of the true steepest point; the raw neighbour
// difference, on the same data, is fooled by the spike (so the spike does
// test something). The sweep stops once the loss blows up.
func TestSuggestionOnSyntheticCurves(t *testing.T) {
	s := DefaultSweep()
	for _, steepest := range []float64{-3, -2, -1.3} {
		for _, noise := range []float64{0, 0.05} {
			spikes := map[int]float64{8: 9, 100: 6}
			ps, stop := sweepOf(s, steepest, noise, spikes)
			if !strings.Contains(stop, "diverged") {
				t.Errorf("steepest %g: the sweep did not stop on divergence (%q)", steepest, stop)
			}
			a, err := Analyze(ps, s.Window)
			if err != nil {
				t.Fatal(err)
			}
			want := math.Pow(10, steepest)
			if r := a.SuggestedLR / want; r > 1.5 || r < 1/1.5 {
				t.Errorf("steepest at %.3g, noise %g: suggested %.3g (%.2f×)", want, noise, a.SuggestedLR, r)
			}
			if a.Slope >= 0 || !(a.MinLossLR > a.SuggestedLR) {
				t.Errorf("slope %g, minimum at %.3g, suggestion %.3g", a.Slope, a.MinLossLR, a.SuggestedLR)
			}
			if raw := rawSteepest(ps); math.Abs(math.Log10(raw/want)) < math.Log10(3) {
				t.Errorf("steepest at %.3g: the raw rule found %.3g, near it: the spikes test nothing", want, raw)
			}
			t.Logf("steepest %.3g noise %g: suggested %.3g, raw rule %.3g, minimum %.3g, %s", want, noise, a.SuggestedLR, rawSteepest(ps), a.MinLossLR, stop)
		}
	}
}

// TestSmoothedLRHasNoLag: the EMA of log LR puts the smoothed loss where it
// belongs. On a loss linear in log LR the smoothed loss at each point equals
// the loss at its smoothed LR.
func TestSmoothedLRHasNoLag(t *testing.T) {
	var s smoother
	for i := range 100 {
		x := -5 + 0.03*float64(i)
		l, sx := s.add(3-0.5*x, x, 0.9)
		if want := 3 - 0.5*sx; math.Abs(l-want) > 1e-9 {
			t.Fatalf("step %d: smoothed loss %g at smoothed log LR %g, want %g", i, l, sx, want)
		}
		if i > 30 && x-sx < 0.2 {
			t.Fatalf("step %d: smoothed log LR %g lags x = %g by less than the EMA's ~9 steps", i, sx, x)
		}
	}
}

func TestAnalyzeRefusesFlatCurves(t *testing.T) {
	s := DefaultSweep()
	c := curve{Sweep: s}
	for i := range 50 {
		c.add(s.lr(i), 1+0.01*float64(i)) // rising from the start
	}
	if _, err := Analyze(c.points, s.Window); err == nil || !strings.Contains(err.Error(), "never fell") {
		t.Errorf("a loss that only rises: %v", err)
	}
	if _, err := Analyze(nil, s.Window); err == nil {
		t.Error("no points: no error")
	}
	for name, mod := range map[string]func(*Sweep){
		"min above max": func(s *Sweep) { s.MinLR = 100 },
		"zero min":      func(s *Sweep) { s.MinLR = 0 },
		"few steps":     func(s *Sweep) { s.Steps = 3 },
		"beta 1":        func(s *Sweep) { s.Beta = 1 },
		"stop factor 1": func(s *Sweep) { s.StopFactor = 1 },
		"no window":     func(s *Sweep) { s.Window = 0 },
		"sparse window": func(s *Sweep) { s.Steps = 40 }, // 3.3 steps in half a decade
	} {
		s := DefaultSweep()
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestRangeTestOnMNISTSubset: a real sweep of the reference MLP on the
// committed MNIST subset ends in divergence and suggests an LR in the range
// where momentum SGD trains this MLP (0.003 to 1: below, a few hundred
// steps barely move it; above, it diverges), below the lowest smoothed
// loss. Then the plot.
func TestRangeTestOnMNISTSubset(t *testing.T) {
	train, test, err := data.LoadMNIST("../../testdata/mnist-subset")
	if err != nil {
		t.Fatal(err)
	}
	base := engine.DefaultConfig()
	base.Hidden = []int{64}
	var steps int
	r, err := Run(context.Background(), Options{
		Base: base, Device: device.NewCPU(), Train: train, Test: test, Sweep: DefaultSweep(),
		Progress: func(done, total int) { steps = done },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("suggested %.3g (slope %.3g per decade), minimum %.3g at %.3g; %s; %d steps", r.SuggestedLR, r.Slope, r.MinLoss, r.MinLossLR, r.Stopped, steps)
	if !strings.HasPrefix(r.Stopped, "diverged") || steps != len(r.Points) && steps != len(r.Points)+1 {
		t.Errorf("stopped %q after %d steps, %d points", r.Stopped, steps, len(r.Points))
	}
	if r.SuggestedLR < 0.003 || r.SuggestedLR > 1 || r.SuggestedLR >= r.MinLossLR {
		t.Errorf("suggested LR %.3g, minimum at %.3g", r.SuggestedLR, r.MinLossLR)
	}
	path := filepath.Join(t.TempDir(), "lr-find.svg")
	if err := Plot(r, path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "suggested") {
		t.Errorf("plot: %v", err)
	}
}
