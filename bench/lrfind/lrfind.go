// Package lrfind is the learning-rate range test (Smith, "Cyclical Learning
// Rates for Training Neural Networks", 2017; fastai's and Lightning's
// lr_find): train from fresh weights while the LR grows exponentially, step
// by step, from a low to a high value, record each step's loss, stop when the
// loss diverges, and suggest the LR where the loss falls fastest.
//
// The suggestion is read off the smoothed loss against log LR, not off the
// raw losses: a single noisy batch, or the first steps' transient, makes a
// steep raw drop anywhere (Lightning users report its raw-gradient
// suggestion fooled by early spikes), and a slope taken per step instead of
// per decade of LR weighs the ends of the sweep unlike its middle.
package lrfind

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Options are a range test's model and sweep.
type Options struct {
	Base        engine.Config // model, optimizer, batch and seed; its LR, schedule and epochs are not used
	Device      device.Device
	Train, Test *data.Dataset // Test only because a trainer needs one: nothing is evaluated
	Sweep
	Progress func(done, total int) // after each step; may be nil
}

// Sweep is the LR schedule of a range test and how its end and its
// suggestion are read.
type Sweep struct {
	MinLR float64 `json:"min_lr"`
	MaxLR float64 `json:"max_lr"`
	Steps int     `json:"steps"` // from MinLR to MaxLR, spaced evenly in log LR
	// Beta is the EMA's smoothing factor: the smoothed loss averages about
	// the last 1/(1-Beta) steps.
	Beta float64 `json:"beta"`
	// StopFactor ends the sweep once the smoothed loss exceeds this many
	// times its lowest value (Lightning's early_stop_threshold).
	StopFactor float64 `json:"stop_factor"`
	// Window is the width, in decades of LR, of the least-squares fit that
	// gives the smoothed loss's slope at each point.
	Window float64 `json:"window_decades"`
}

// DefaultSweep spans six decades in 200 steps (33 per decade): the EMA of
// β = 0.9 then averages about a third of a decade, fine enough to place the
// steepest descent within a factor of about 1.5.
func DefaultSweep() Sweep {
	return Sweep{MinLR: 1e-5, MaxLR: 10, Steps: 200, Beta: 0.9, StopFactor: 4, Window: 0.5}
}

// Validate names the first setting that makes no sweep.
func (s Sweep) Validate() error {
	switch {
	case !(s.MinLR > 0) || !(s.MaxLR > s.MinLR) || math.IsInf(s.MaxLR, 0):
		return fmt.Errorf("need 0 < min LR < max LR, got %g and %g", s.MinLR, s.MaxLR)
	case s.Steps < 10:
		return fmt.Errorf("a sweep needs at least 10 steps, got %d", s.Steps)
	case !(s.Beta >= 0 && s.Beta < 1):
		return fmt.Errorf("the smoothing factor must be in [0,1), got %g", s.Beta)
	case !(s.StopFactor > 1):
		return fmt.Errorf("the stop factor must be above 1, got %g", s.StopFactor)
	case !(s.Window > 0):
		return fmt.Errorf("the slope window must be positive, got %g decades", s.Window)
	}
	if per := s.Window * float64(s.Steps-1) / math.Log10(s.MaxLR/s.MinLR); per < minFit {
		return fmt.Errorf("a slope window of %g decades holds %.1f steps of a sweep of %d steps over %.2g decades, and a slope needs %d: more steps or a wider window",
			s.Window, per, s.Steps, math.Log10(s.MaxLR/s.MinLR), minFit)
	}
	return nil
}

// lr is the learning rate of step i.
func (s Sweep) lr(i int) float64 {
	return s.MinLR * math.Pow(s.MaxLR/s.MinLR, float64(i)/float64(s.Steps-1))
}

// Point is one step of the sweep.
type Point struct {
	Step int     `json:"step"`
	LR   float64 `json:"lr"`
	Loss float64 `json:"loss"` // the batch's mean loss, before this step's update
	// Smoothed is the EMA of the losses so far, bias-corrected, and
	// SmoothedLR the LR it stands for: the same EMA of log LR (see smooth).
	Smoothed   float64 `json:"smoothed_loss"`
	SmoothedLR float64 `json:"smoothed_lr"`
}

// Result is a range test and its suggestion.
type Result struct {
	Device    string  `json:"device"`
	Dataset   string  `json:"dataset"`
	Samples   int     `json:"samples"`
	Model     string  `json:"model"`
	Optimizer string  `json:"optimizer"`
	Batch     int     `json:"batch"`
	Sweep     Sweep   `json:"sweep"`
	Points    []Point `json:"points"`
	Stopped   string  `json:"stopped"` // why the sweep ended
	Analysis
}

// Analysis is what the smoothed curve says.
type Analysis struct {
	SuggestedLR float64 `json:"suggested_lr"`
	// Slope is d(smoothed loss)/d(log₁₀ LR) at the suggestion: the loss
	// falls by this much per decade there.
	Slope     float64 `json:"slope_per_decade"`
	MinLossLR float64 `json:"min_loss_lr"` // where the smoothed loss is lowest
	MinLoss   float64 `json:"min_smoothed_loss"`
	Rule      string  `json:"rule"`
}

// minFit is the fewest points a slope is fitted to, so that one noisy
// point cannot set it.
const minFit = 5

// rule says how the suggestion is chosen, in the result and the plot.
const rule = "steepest descent of the smoothed loss against log LR, a least-squares slope over a window of the sweep, before the lowest smoothed loss"

// Run trains the sweep from fresh weights and analyses it.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Sweep.Validate(); err != nil {
		return nil, err
	}
	cfg := o.Base
	// The sweep sets every step's LR itself; the schedule's settings
	// would only be validated.
	cfg.LR, cfg.Epochs, cfg.LRScale, cfg.BaseBatch, cfg.WarmupEpochs, cfg.DecayEpochs = o.MinLR, 1, engine.ScaleNone, 0, 0, nil
	cfg.IncreaseBatch, cfg.MaxBatch, cfg.AdaptRegime = false, 0, false
	cfg.EvalBatch = min(cfg.EvalBatch, o.Test.Len())
	tr, err := engine.NewTrainer(o.Device, cfg, o.Train, o.Test)
	if err != nil {
		return nil, err
	}
	b, n := cfg.Batch, o.Train.Len()
	perEpoch := n / b // whole batches only: every step's loss is over b samples
	batch := func(i int) []int32 {
		order := data.Permutation(n, cfg.Seed, 1+i/perEpoch)
		j := i % perEpoch
		return order[j*b : (j+1)*b]
	}
	r := &Result{
		Device: o.Device.Info().String(), Dataset: o.Train.Name, Samples: n, Model: tr.Model.String(),
		Optimizer: string(cmp.Or(cfg.Optimizer, engine.MomentumSGD)), Batch: b, Sweep: o.Sweep,
		Stopped: fmt.Sprintf("reached the maximum LR after %d steps", o.Steps),
	}
	c := curve{Sweep: o.Sweep}
	for i := range o.Steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lr := o.lr(i)
		var next []int32
		if i+1 < o.Steps {
			next = batch(i + 1)
		}
		if err := tr.Step(0, batch(i), next, lr); err != nil {
			return nil, fmt.Errorf("step %d at LR %.3g: %w", i+1, lr, err)
		}
		loss, err := tr.StepLoss(0)
		if err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(i+1, o.Steps)
		}
		if stop := c.add(lr, loss); stop != "" {
			r.Stopped = stop
			break
		}
	}
	r.Points = c.points
	if r.Analysis, err = Analyze(r.Points, o.Window); err != nil {
		return r, fmt.Errorf("%w (the sweep %s)", err, r.Stopped)
	}
	return r, nil
}

// curve is the sweep so far: its points, smoothed, and its lowest smoothed loss.
type curve struct {
	Sweep
	s      smoother
	best   float64
	points []Point
}

// add records the loss of the next step, taken at lr, and says why the
// sweep must stop there, if it must: the loss is not finite, or the
// smoothed loss has grown beyond StopFactor times its lowest.
func (c *curve) add(lr, loss float64) (stop string) {
	step := len(c.points) + 1
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return fmt.Sprintf("diverged: the loss was %g at step %d (LR %.3g)", loss, step, lr)
	}
	sl, sx := c.s.add(loss, math.Log10(lr), c.Beta)
	c.points = append(c.points, Point{Step: step, LR: lr, Loss: loss, Smoothed: sl, SmoothedLR: math.Pow(10, sx)})
	if step == 1 || sl < c.best {
		c.best = sl
	}
	if sl > c.StopFactor*c.best {
		return fmt.Sprintf("diverged: the smoothed loss %.3g exceeded %g × its lowest, %.3g, at step %d (LR %.3g)", sl, c.StopFactor, c.best, step, lr)
	}
	return ""
}

// smoother is a running median of the last medianOf losses followed by an
// exponential moving average with the bias correction of Adam and fastai
// (the average of the first steps is not pulled toward 0). The median goes
// first because an EMA does not remove a spike, one bad batch, but spreads
// it over its window, and the spike's decay out of the average is a steep
// descent that a slope rule would take for the LR's effect.
//
// Both filters are applied to log LR as to the loss: each lags the step it
// ends at (the median by 2 steps, the EMA by about β/(1-β)), and the same
// weights over the log LRs give where the smoothed value belongs on the LR
// axis. Without that, the smoothed curve, and its steepest point, would sit
// at higher LRs than the losses it averages (a factor 2.2 with the default
// sweep).
type smoother struct {
	n          int
	recent     []float64 // the last medianOf losses
	loss, logx float64
	logxs      []float64 // the last medianOf log LRs
}

const medianOf = 5

func (s *smoother) add(loss, logx, beta float64) (smoothedLoss, smoothedLogx float64) {
	keep := func(xs []float64, x float64) []float64 {
		if len(xs) == medianOf {
			xs = xs[1:]
		}
		return append(xs, x)
	}
	s.recent, s.logxs = keep(s.recent, loss), keep(s.logxs, logx)
	s.n++
	s.loss = beta*s.loss + (1-beta)*median(s.recent)
	s.logx = beta*s.logx + (1-beta)*median(s.logxs)
	c := 1 - math.Pow(beta, float64(s.n))
	return s.loss / c, s.logx / c
}

// median of x (left unchanged).
func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// Analyze finds the suggestion on the smoothed curve: at each point, the
// least-squares slope of the smoothed loss against log₁₀ LR over the points
// within window/2 decades; the suggestion is the point of the most negative
// slope, among the points at or before the lowest smoothed loss (past it the
// loss rises toward divergence).
//
// Why the steepest descent and not fastai's other rule, a tenth of the
// minimum's LR: the minimum sits where the loss is about to diverge, a point
// that moves with the batch's noise and with how far the EMA lags, and "a
// tenth" is a convention; the steepest descent is where one step of LR buys
// the most loss, which is what a fixed LR should be. A fit over a window of
// points, rather than the difference of two neighbours, keeps one noisy
// batch from deciding it.
func Analyze(points []Point, window float64) (Analysis, error) {
	a := Analysis{Rule: rule, MinLoss: math.Inf(1)}
	last := -1
	for i, p := range points {
		if p.Smoothed < a.MinLoss {
			a.MinLoss, a.MinLossLR, last = p.Smoothed, p.SmoothedLR, i
		}
	}
	if last < 0 {
		return a, errors.New("no finite loss to analyse")
	}
	x := make([]float64, len(points))
	for i, p := range points {
		x[i] = math.Log10(p.SmoothedLR)
	}
	best := 0.0
	for i := 0; i <= last; i++ {
		var xs, ys []float64
		for j, p := range points {
			if math.Abs(x[j]-x[i]) <= window/2 {
				xs, ys = append(xs, x[j]), append(ys, p.Smoothed)
			}
		}
		if len(xs) < minFit {
			continue
		}
		if _, slope := stat.LinearRegression(xs, ys, nil, false); slope < best {
			best, a.SuggestedLR, a.Slope = slope, points[i].SmoothedLR, slope
		}
	}
	if a.SuggestedLR == 0 {
		return a, fmt.Errorf("the smoothed loss never fell over a window of %g decades before its lowest point: start the sweep lower, end it higher or give it more steps", window)
	}
	return a, nil
}
