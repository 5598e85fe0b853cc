package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Config is what a training run is made of. Its JSON form goes into every
// result file, so a number can always be traced to the settings behind it.
type Config struct {
	Hidden      []int   `json:"hidden"`       // widths of the hidden layers
	Batch       int     `json:"batch"`        // samples per parameter update (at the start)
	LR          float64 `json:"lr"`           // learning rate at BaseBatch (η₀)
	Momentum    float64 `json:"momentum"`     // SGD momentum
	WeightDecay float64 `json:"weight_decay"` // L2 penalty, added to the gradient
	Epochs      int     `json:"epochs"`
	Seed        uint64  `json:"seed"`       // weights and data order
	EvalBatch   int     `json:"eval_batch"` // rows per forward pass when evaluating

	// Schedules (see schedule.go).
	LRScale       string  `json:"lr_scale,omitempty"`       // none, linear or sqrt
	BaseBatch     int     `json:"base_batch,omitempty"`     // B₀ of the scaling rule; 0: Batch
	WarmupEpochs  float64 `json:"warmup_epochs,omitempty"`  // ramp η₀ → scaled rate
	DecayEpochs   []int   `json:"decay_epochs,omitempty"`   // decay after these epochs
	DecayFactor   float64 `json:"decay_factor,omitempty"`   // 0: 0.1
	IncreaseBatch bool    `json:"increase_batch,omitempty"` // grow the batch instead of decaying
	MaxBatch      int     `json:"max_batch,omitempty"`      // cap of increase-batch; 0: Batch
	AdaptRegime   bool    `json:"adapt_regime,omitempty"`   // train Batch/BaseBatch × the epochs

	BatchNorm  bool `json:"batch_norm,omitempty"`  // batch normalization after each hidden layer
	GhostBatch int  `json:"ghost_batch,omitempty"` // normalize over groups of this many rows (implies BatchNorm)
}

// DefaultConfig is the reference run: the MLP 784-512-512-10 at batch 128.
func DefaultConfig() Config {
	return Config{Hidden: []int{512, 512}, Batch: 128, LR: 0.1, Momentum: 0.9, Epochs: 1, Seed: 1, EvalBatch: 1000}
}

// Validate checks the settings against a training set of n samples.
func (c Config) Validate(n int) error {
	var errs []string
	if c.Batch <= 0 {
		errs = append(errs, fmt.Sprintf("batch size must be positive, got %d", c.Batch))
	} else if c.Batch > n {
		errs = append(errs, fmt.Sprintf("batch size %d is larger than the %d training samples", c.Batch, n))
	}
	if c.BaseBatch < 0 || c.MaxBatch < 0 {
		errs = append(errs, fmt.Sprintf("base and max batch must not be negative, got %d and %d", c.BaseBatch, c.MaxBatch))
	} else if c.Batch > 0 {
		errs = append(errs, c.Resolved().validateSchedule()...)
	}
	if c.EvalBatch <= 0 {
		errs = append(errs, fmt.Sprintf("evaluation batch size must be positive, got %d", c.EvalBatch))
	}
	if c.GhostBatch < 0 {
		errs = append(errs, fmt.Sprintf("ghost batch must not be negative, got %d", c.GhostBatch))
	}
	if c.Epochs <= 0 {
		errs = append(errs, fmt.Sprintf("epochs must be positive, got %d", c.Epochs))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Sprintf("learning rate must be a positive number, got %g", c.LR))
	}
	if !(c.Momentum >= 0 && c.Momentum < 1) {
		errs = append(errs, fmt.Sprintf("momentum must be in [0, 1), got %g", c.Momentum))
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Sprintf("weight decay must be a non-negative number, got %g", c.WeightDecay))
	}
	for _, h := range c.Hidden {
		if h <= 0 {
			errs = append(errs, fmt.Sprintf("hidden widths must be positive, got %v", c.Hidden))
			break
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// EpochStats is what one epoch did and cost.
type EpochStats struct {
	Epoch         int     `json:"epoch"`
	Batch         int     `json:"batch"`      // batch size of this epoch
	LR            float64 `json:"lr"`         // learning rate of its last step
	TrainLoss     float64 `json:"train_loss"` // mean over the epoch's samples, as trained
	TrainAccuracy float64 `json:"train_accuracy"`
	TestLoss      float64 `json:"test_loss"`
	TestAccuracy  float64 `json:"test_accuracy"`
	Updates       int     `json:"updates"`       // parameter updates in this epoch
	TotalUpdates  int     `json:"total_updates"` // since the start of the run
	Samples       int     `json:"samples"`
	Seconds       float64 `json:"seconds"` // wall time of the training pass
	SamplesPerSec float64 `json:"samples_per_sec"`
	// Host→device traffic of the training pass.
	H2DBytes  int64 `json:"h2d_bytes"`
	H2DCopies int64 `json:"h2d_copies"`
	// The training pass split by device events: loading and copying the
	// batch, forward and backward, and the optimizer update.
	TransferSeconds float64   `json:"transfer_seconds"`
	ComputeSeconds  float64   `json:"compute_seconds"`
	UpdateSeconds   float64   `json:"update_seconds"`
	StepLosses      []float32 `json:"step_losses,omitempty"` // mean loss of each batch
}

// Trainer trains a Model on one device.
type Trainer struct {
	Config Config // resolved: defaults filled in, regime adaptation applied
	Model  *Model
	d      device.Device

	train, test           *data.Dataset
	trainLoader, evalLoad *data.Loader

	dlogits      device.Buffer
	stepLosses   device.Buffer // one slot per step of an epoch
	stepCorrect  device.Buffer
	events       [4]device.Event
	totalUpdates int
}

// NewTrainer builds the model and the loaders for cfg on d.
func NewTrainer(d device.Device, cfg Config, train, test *data.Dataset) (*Trainer, error) {
	if missing := device.Missing(d); len(missing) > 0 {
		return nil, fmt.Errorf("the %s device cannot train yet: it lacks %s", d.Info().Kind, strings.Join(missing, ", "))
	}
	if err := cfg.Validate(train.Len()); err != nil {
		return nil, err
	}
	if test.Features() != train.Features() || test.Classes != train.Classes {
		return nil, fmt.Errorf("test set %s (%d features, %d classes) does not match training set %s (%d, %d)",
			test.Name, test.Features(), test.Classes, train.Name, train.Features(), train.Classes)
	}
	cfg = cfg.Resolved()
	widths := append(append([]int{train.Features()}, cfg.Hidden...), train.Classes)
	maxBatch := cfg.MaxBatchSize()
	maxRows := max(maxBatch, cfg.EvalBatch)
	model, err := BuildMLP(d, Arch{Widths: widths, BatchNorm: cfg.BatchNorm, GhostBatch: cfg.GhostBatch}, maxRows, cfg.Seed)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Config: cfg, Model: model, d: d, train: train, test: test}
	if t.trainLoader, err = data.NewLoader(d, train, maxBatch); err != nil {
		return nil, err
	}
	if t.evalLoad, err = data.NewLoader(d, test, cfg.EvalBatch); err != nil {
		return nil, err
	}
	steps := t.StepsIn(1) // the batch only grows: epoch 1 has the most steps
	maxEvalSteps := (max(train.Len(), test.Len()) + cfg.EvalBatch - 1) / cfg.EvalBatch
	if t.dlogits, err = d.Alloc(device.Float32, maxRows*train.Classes); err != nil {
		return nil, err
	}
	if t.stepLosses, err = d.Alloc(device.Float32, max(steps, maxEvalSteps)); err != nil {
		return nil, err
	}
	if t.stepCorrect, err = d.Alloc(device.Int32, max(steps, maxEvalSteps)); err != nil {
		return nil, err
	}
	for i := range t.events {
		if t.events[i], err = d.NewEvent(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Device is the device the trainer runs on.
func (t *Trainer) Device() device.Device { return t.d }

// StepsIn counts the batches of an epoch (1-based); the last may be short.
func (t *Trainer) StepsIn(epoch int) int { return t.Config.stepsIn(epoch, t.train.Len()) }

// Epoch trains one pass over the training set in a fresh order, then
// evaluates on the test set. onStep, if not nil, is told after every step.
// A cancelled ctx stops the epoch between steps.
func (t *Trainer) Epoch(ctx context.Context, epoch int, onStep func(done, total int)) (EpochStats, error) {
	d, cfg := t.d, t.Config
	order := data.Permutation(t.train.Len(), cfg.Seed, epoch)
	steps, batchSize := t.StepsIn(epoch), cfg.BatchAt(epoch)
	stats := EpochStats{Epoch: epoch, Samples: t.train.Len(), Batch: batchSize}
	t.Model.SetTraining(true)
	trafficBefore := d.Traffic()
	start := time.Now()
	var transfer, compute, update time.Duration
	for step := 0; step < steps; step++ {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		batch := order[step*batchSize : min((step+1)*batchSize, len(order))]
		rows := len(batch)
		d.RecordEvent(t.events[0])
		x, labels, err := t.trainLoader.Load(batch)
		if err != nil {
			return stats, err
		}
		d.RecordEvent(t.events[1])
		logits := t.Model.Forward(d, x, rows)
		classes := t.train.Classes
		// The loss is the batch mean, so its gradient carries 1/rows.
		d.SoftmaxCrossEntropy(t.dlogits, t.stepLosses, logits, labels, step, rows, classes, 1/float32(rows))
		d.CountCorrect(t.stepCorrect, logits, labels, step, rows, classes)
		t.Model.Backward(d, t.dlogits, rows)
		d.RecordEvent(t.events[2])
		stats.LR = cfg.LRAt(epoch, step, steps)
		for _, p := range t.Model.Params() {
			d.MomentumSGD(p.Value, p.Grad, p.Velocity, p.Size(), float32(stats.LR), float32(cfg.Momentum), float32(cfg.WeightDecay))
		}
		d.RecordEvent(t.events[3])
		if err := d.Sync(); err != nil {
			return stats, fmt.Errorf("step %d of epoch %d: %w", step, epoch, err)
		}
		for i, acc := range []*time.Duration{&transfer, &compute, &update} {
			el, err := d.EventElapsed(t.events[i], t.events[i+1])
			if err != nil {
				return stats, err
			}
			*acc += el
		}
		t.totalUpdates++
		if onStep != nil {
			onStep(step+1, steps)
		}
	}
	stats.Seconds = time.Since(start).Seconds()
	traffic := d.Traffic().Sub(trafficBefore)
	stats.H2DBytes, stats.H2DCopies = traffic.HostToDeviceBytes, traffic.HostToDeviceCopies
	stats.TransferSeconds, stats.ComputeSeconds, stats.UpdateSeconds = transfer.Seconds(), compute.Seconds(), update.Seconds()
	stats.Updates, stats.TotalUpdates = steps, t.totalUpdates
	stats.SamplesPerSec = float64(stats.Samples) / stats.Seconds

	losses, loss, acc, err := t.readSteps(steps, batchSize, t.train.Len())
	if err != nil {
		return stats, err
	}
	stats.StepLosses, stats.TrainLoss, stats.TrainAccuracy = losses, loss, acc
	for i, l := range losses {
		if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
			return stats, fmt.Errorf("training diverged: the loss of step %d of epoch %d is %g (try a smaller learning rate)", i, epoch, l)
		}
	}
	if stats.TestLoss, stats.TestAccuracy, err = t.Evaluate(t.test); err != nil {
		return stats, err
	}
	return stats, nil
}

// Evaluate returns the mean loss and the accuracy of the model on ds.
func (t *Trainer) Evaluate(ds *data.Dataset) (loss, accuracy float64, err error) {
	t.Model.SetTraining(false)
	loader := t.evalLoad
	if ds != t.test {
		if loader, err = data.NewLoader(t.d, ds, t.Config.EvalBatch); err != nil {
			return 0, 0, err
		}
		defer loader.Close()
	}
	rows := t.Config.EvalBatch
	steps := (ds.Len() + rows - 1) / rows
	idx := make([]int32, rows)
	for step := 0; step < steps; step++ {
		n := min(rows, ds.Len()-step*rows)
		for i := range n {
			idx[i] = int32(step*rows + i)
		}
		x, labels, err := loader.Load(idx[:n])
		if err != nil {
			return 0, 0, err
		}
		logits := t.Model.Forward(t.d, x, n)
		t.d.SoftmaxCrossEntropy(nil, t.stepLosses, logits, labels, step, n, ds.Classes, 0)
		t.d.CountCorrect(t.stepCorrect, logits, labels, step, n, ds.Classes)
	}
	_, loss, accuracy, err = t.readSteps(steps, rows, ds.Len())
	return loss, accuracy, err
}

// readSteps downloads the per-step losses and correct counts of a pass of n
// samples in batches of rows and combines them into per-sample means.
func (t *Trainer) readSteps(steps, rows, n int) (losses []float32, loss, accuracy float64, err error) {
	if err := t.d.Sync(); err != nil {
		return nil, 0, 0, err
	}
	losses = make([]float32, steps)
	correct := make([]int32, steps)
	if err := device.Download(t.d, losses, t.stepLosses); err != nil {
		return nil, 0, 0, err
	}
	if err := device.Download(t.d, correct, t.stepCorrect); err != nil {
		return nil, 0, 0, err
	}
	var sumLoss float64
	var sumCorrect int
	for i := range steps {
		batch := min(rows, n-i*rows)
		sumLoss += float64(losses[i]) * float64(batch)
		sumCorrect += int(correct[i])
	}
	return losses, sumLoss / float64(n), float64(sumCorrect) / float64(n), nil
}

// Hooks are told about a run's progress; any of them may be nil.
type Hooks struct {
	Step  func(epoch, done, total int) // after every training step
	Epoch func(EpochStats)             // after every epoch, with its stats
}

// Run trains cfg.Epochs epochs and returns each epoch's stats; on an error
// it returns the epochs completed before it.
func (t *Trainer) Run(ctx context.Context, hooks Hooks) ([]EpochStats, error) {
	var all []EpochStats
	for e := 1; e <= t.Config.Epochs; e++ {
		var onStep func(done, total int)
		if hooks.Step != nil {
			onStep = func(done, total int) { hooks.Step(e, done, total) }
		}
		s, err := t.Epoch(ctx, e, onStep)
		if err != nil {
			return all, err
		}
		all = append(all, s)
		if hooks.Epoch != nil {
			hooks.Epoch(s)
		}
	}
	return all, nil
}
