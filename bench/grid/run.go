package grid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Run is one run of the grid and what it measured.
type Run struct {
	Schema      int           `json:"schema"`
	ID          string        `json:"id"`
	Kind        string        `json:"kind"`
	Batch       int           `json:"batch"`
	LR          float64       `json:"lr"`
	Seed        uint64        `json:"seed"`
	Device      device.Info   `json:"device"`
	Config      engine.Config `json:"config"`
	TrainLen    int           `json:"train_samples"` // samples per epoch
	InitialLoss float64       `json:"initial_loss"`  // the first step's loss, at the initial weights
	Hits        []Hit         `json:"hits"`          // one per target, in the plan's order
	Epochs      int           `json:"epochs"`        // trained (a diverged run's last one partly)
	Updates     int           `json:"updates"`
	// FinalAccuracy is the last whole epoch's training accuracy (running,
	// as trained); absent when the run diverged in its first epoch.
	FinalAccuracy *float64 `json:"final_train_accuracy"`
	Diverged      bool     `json:"diverged"`  // the loss became NaN or Inf
	Collapsed     bool     `json:"collapsed"` // no progress: see collapsed
	Error         string   `json:"error,omitempty"`
	// StepLosses is every step's mean batch loss, epochs one after the
	// other; the loss of step k is taken at the weights after k updates.
	StepLosses engine.Losses `json:"step_losses"`
	Noise      []NoisePair   `json:"noise,omitempty"` // noise runs only
	Seconds    float64       `json:"seconds"`
}

// Hit is when a run reached a loss target: the updates and samples before
// the first step whose smoothed loss is at or below it. A target not
// reached has reached false and null steps and samples, never a number.
type Hit struct {
	Target  float64 `json:"target"`
	Reached bool    `json:"reached"`
	Steps   *int    `json:"steps"`
	Samples *int    `json:"samples"`
}

// NoisePair is one measurement of the noise scale's two moments (engine's
// unbiased two-batch estimates) after Step updates.
type NoisePair struct {
	Step       int     `json:"step"`
	GradSq     float64 `json:"grad_sq"`
	TraceSigma float64 `json:"trace_sigma"`
}

// Failed says whether the run is no evidence for its LR: it diverged,
// collapsed or broke.
func (r Run) Failed() bool { return r.Diverged || r.Collapsed || r.Error != "" }

func (r Run) outcome() string {
	switch {
	case r.Diverged:
		return "diverged"
	case r.Collapsed:
		return "collapsed"
	case r.Error != "":
		return "failed: " + r.Error
	}
	n := 0
	for _, h := range r.Hits {
		if h.Reached {
			n++
		}
	}
	return fmt.Sprintf("%d of %d targets reached", n, len(r.Hits))
}

const runSchema = 1

// loadRun reads the result of s at path and refuses a file that is not one.
func loadRun(path string, s spec) (Run, error) {
	return runstore.Load(path, func(r Run) error { return r.isResultOf(s) })
}

// isResultOf checks a loaded run against its spec: schema, identity,
// settings, and a loss for every update.
func (r Run) isResultOf(s spec) error {
	got, _ := json.Marshal(r.Config)
	want, _ := json.Marshal(s.Config.Resolved())
	switch {
	case r.Schema != runSchema:
		return fmt.Errorf("schema %d, want %d", r.Schema, runSchema)
	case r.ID != s.ID || r.Kind != s.Kind:
		return fmt.Errorf("it is run %s (%s)", r.ID, r.Kind)
	case string(got) != string(want):
		return fmt.Errorf("its settings %s are not the planned %s", got, want)
	case len(r.StepLosses) != r.Updates:
		return fmt.Errorf("%d step losses for %d updates", len(r.StepLosses), r.Updates)
	}
	return nil
}

// execute trains one run to its targets on a fresh device. Divergence and
// collapse are results; only cancellation is an error of the grid.
func execute(ctx context.Context, s spec, p Plan, deviceName string, train, test *data.Dataset) (run Run, err error) {
	run = Run{Schema: runSchema, ID: s.ID, Kind: s.Kind, Batch: s.Config.Batch, LR: s.Config.LR, Seed: s.Config.Seed,
		Config: s.Config.Resolved(), TrainLen: train.Len()}
	d, err := device.Open(deviceName)
	if err != nil {
		return run, err
	}
	defer d.Close()
	run.Device = d.Info()
	start := time.Now()
	defer func() { run.Seconds = time.Since(start).Seconds() }()
	tr, err := engine.NewTrainer(d, s.Config, train, test)
	if err != nil {
		run.Error = err.Error()
		return run, nil
	}
	var onStep func(done, total int)
	var measureErr error
	if s.Kind == Noise {
		meter, err := engine.NewNoiseMeter(tr, p.NoiseSmall, p.NoiseBig, s.Config.Seed)
		if err != nil {
			run.Error = err.Error()
			return run, nil
		}
		defer meter.Close()
		onStep = func(done, total int) {
			step := tr.TotalUpdates()
			if measureErr != nil || step%p.NoiseEvery != 0 {
				return
			}
			for range p.NoisePairs {
				var e engine.NoiseEstimate
				if e, measureErr = meter.Sample(1); measureErr != nil {
					return
				}
				run.Noise = append(run.Noise, NoisePair{Step: step, GradSq: e.GradSq(), TraceSigma: e.TraceSigma()})
			}
		}
	}
	half := halfWindow(s.Config.Batch, p.SmoothSamples)
	for epoch := 1; epoch <= p.MaxEpochs; epoch++ {
		stats, err := tr.Epoch(ctx, epoch, onStep)
		if ctx.Err() != nil {
			return run, ctx.Err()
		}
		run.Epochs = epoch
		if errors.Is(err, engine.ErrDiverged) {
			run.Diverged, run.Error = true, ""
			if part, perr := tr.Partial(); perr == nil && part != nil {
				run.StepLosses = append(run.StepLosses, part.StepLosses...)
			}
			break
		}
		if err != nil {
			run.Error = err.Error()
			break
		}
		if measureErr != nil {
			run.Error = measureErr.Error()
			break
		}
		run.StepLosses = append(run.StepLosses, stats.StepLosses...)
		acc := stats.TrainAccuracy
		run.FinalAccuracy = &acc
		run.InitialLoss = float64(run.StepLosses[0])
		run.Hits = hits(Smooth(run.StepLosses, half), p.Targets, run.samplesBefore)
		if allReached(run.Hits) {
			break
		}
		// No progress in a whole epoch after the first: the LR is too
		// large to learn (or so small nothing moves); a capped run at
		// chance accuracy is the same.
		if epoch >= 2 && stats.TrainLoss >= run.InitialLoss || epoch == p.MaxEpochs && acc <= chance(train) {
			run.Collapsed = true
			break
		}
	}
	run.Updates = len(run.StepLosses)
	if len(run.StepLosses) > 0 {
		run.InitialLoss = float64(run.StepLosses[0])
	}
	if run.Hits == nil || run.Diverged {
		run.Hits = hits(Smooth(run.StepLosses, half), p.Targets, run.samplesBefore)
	}
	if math.IsNaN(run.InitialLoss) || math.IsInf(run.InitialLoss, 0) {
		run.InitialLoss = 0 // diverged at its first step; Diverged says so
	}
	return run, nil
}

// chance is the accuracy of guessing: 1.2 over the number of classes, a
// little above exact chance to allow for the running mean's noise.
func chance(train *data.Dataset) float64 { return 1.2 / float64(train.Classes) }

// samplesBefore is the samples the first k steps trained on (the last step
// of an epoch may be short).
func (r Run) samplesBefore(k int) int {
	perEpoch := (r.TrainLen + r.Batch - 1) / r.Batch
	return k/perEpoch*r.TrainLen + k%perEpoch*r.Batch
}

func allReached(hs []Hit) bool {
	for _, h := range hs {
		if !h.Reached {
			return false
		}
	}
	return true
}

// Num is a number that may not be finite (a B_simple not yet estimable, a
// bootstrap bound beyond the batches measured): null in JSON, which
// encoding/json would refuse to write, and NaN when read back.
type Num float64

func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	return json.Unmarshal(b, (*float64)(n))
}
