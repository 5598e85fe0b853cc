package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// Config is what a training run is made of. Its JSON form goes into every
// result file, so a number can always be traced to the settings behind it.
type Config struct {
	// Model is the architecture's spec (ParseModel) when it is not an MLP;
	// "": the MLP of Hidden, as in results written before there were specs.
	Model       string    `json:"model,omitempty"`
	Hidden      []int     `json:"hidden"`              // widths of an MLP's hidden layers
	Batch       int       `json:"batch"`               // samples per parameter update (at the start)
	LR          float64   `json:"lr"`                  // learning rate at BaseBatch (η₀)
	Optimizer   Optimizer `json:"optimizer,omitempty"` // "": MomentumSGD
	Momentum    float64   `json:"momentum"`            // SGD momentum (0 with Adam and AdamW)
	WeightDecay float64   `json:"weight_decay"`        // L2 penalty added to the gradient; AdamW: decoupled decay
	// Adam's and AdamW's moment decay rates and denominator term (0 with
	// momentum SGD); PyTorch's defaults are DefaultBeta1, DefaultBeta2, DefaultEps.
	Beta1     float64 `json:"beta1,omitempty"`
	Beta2     float64 `json:"beta2,omitempty"`
	Eps       float64 `json:"eps,omitempty"`
	Epochs    int     `json:"epochs"`
	Seed      uint64  `json:"seed"`       // weights and data order
	EvalBatch int     `json:"eval_batch"` // rows per forward pass when evaluating

	// Schedules (see schedule.go).
	LRScale       LRRule  `json:"lr_scale,omitempty"`       // none, linear or sqrt
	BaseBatch     int     `json:"base_batch,omitempty"`     // B₀ of the scaling rule; 0: Batch
	WarmupEpochs  float64 `json:"warmup_epochs,omitempty"`  // ramp η₀ → scaled rate
	DecayEpochs   []int   `json:"decay_epochs,omitempty"`   // decay after these epochs
	DecayFactor   float64 `json:"decay_factor,omitempty"`   // 0: 0.1
	IncreaseBatch bool    `json:"increase_batch,omitempty"` // grow the batch instead of decaying
	MaxBatch      int     `json:"max_batch,omitempty"`      // cap of increase-batch; 0: Batch
	AdaptRegime   bool    `json:"adapt_regime,omitempty"`   // train Batch/BaseBatch × the epochs

	BatchNorm  bool `json:"batch_norm,omitempty"`  // batch normalization after each hidden layer
	GhostBatch int  `json:"ghost_batch,omitempty"` // normalize over groups of this many rows (implies BatchNorm)

	// Transfer is how batches reach the device; the zero Strategy is
	// pageable float32. Every strategy trains bit-identically.
	Transfer data.Strategy `json:"transfer,omitzero"`

	// Graph replays each step's forward and backward pass, and the update,
	// as CUDA graphs (device.Grapher): one launch instead of dozens, which
	// is what a small-batch step costs. The same calls run in the same order.
	Graph bool `json:"graph,omitempty"`

	// Memory is the bytes the run may take (see MemoryBudget); 0: the
	// GPU's free memory, or half the available RAM on the CPU. It changes
	// whether a run starts, not what it computes, so results leave it out.
	Memory int64 `json:"-"`
}

// DefaultConfig is the reference run: the MLP 784-512-512-10 at batch 128.
func DefaultConfig() Config {
	return Config{Hidden: []int{512, 512}, Batch: 128, LR: 0.1, Momentum: 0.9, Epochs: 1, Seed: 1, EvalBatch: 1000}
}

// maxEpochs bounds a run's epochs: far beyond any run, low enough that
// walking a schedule's epochs takes no time.
const maxEpochs = 100000

// Validate checks the settings against a training set of n samples.
func (c Config) Validate(n int) error {
	var errs []string
	if c.Batch <= 0 {
		errs = append(errs, fmt.Sprintf("batch size must be positive, got %d", c.Batch))
	} else if c.Batch > n {
		errs = append(errs, fmt.Sprintf("batch size %d is larger than the %d training samples", c.Batch, n))
	}
	if c.MaxBatch != 0 && !c.IncreaseBatch {
		errs = append(errs, fmt.Sprintf("a max batch (%d) caps only an increase-batch schedule, and there is none", c.MaxBatch))
	}
	if c.BaseBatch < 0 || c.MaxBatch < 0 {
		errs = append(errs, fmt.Sprintf("base and max batch must not be negative, got %d and %d", c.BaseBatch, c.MaxBatch))
	} else if c.Batch > 0 {
		sched := c.Resolved().validateSchedule()
		if len(sched) == 0 {
			sched = c.idleSettings()
		}
		errs = append(errs, sched...)
	}
	if c.EvalBatch <= 0 {
		errs = append(errs, fmt.Sprintf("evaluation batch size must be positive, got %d", c.EvalBatch))
	}
	if err := c.Transfer.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.GhostBatch < 0 {
		errs = append(errs, fmt.Sprintf("ghost batch must not be negative, got %d", c.GhostBatch))
	}
	if c.Epochs <= 0 || c.Epochs > maxEpochs {
		errs = append(errs, fmt.Sprintf("epochs must be in 1 to %d, got %d", maxEpochs, c.Epochs))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Sprintf("learning rate must be a positive number, got %g", c.LR))
	}
	errs = append(errs, c.validateOptimizer()...)
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Sprintf("weight decay must be a non-negative number, got %g", c.WeightDecay))
	}
	for _, h := range c.Hidden {
		if h <= 0 {
			errs = append(errs, fmt.Sprintf("hidden widths must be positive, got %v", c.Hidden))
			break
		}
	}
	if _, err := c.ModelSpec(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// idleSettings names the settings of a valid schedule that would change
// nothing: a run that looks configured and is not is worse than an error.
// (A rule at the base batch itself, a factor of 1, is left alone: a sweep
// over batch sizes meets it at its base and means it.)
func (c Config) idleSettings() []string {
	r := c.Resolved()
	var errs []string
	if c.LRScale != "" && c.LRScale != ScaleNone && c.BaseBatch == 0 {
		errs = append(errs, fmt.Sprintf("the %s LR rule scales lr from a base batch, and none is set: it would be the batch itself, a factor of 1", c.LRScale))
	}
	if c.WarmupEpochs > 0 && r.LRScale == ScaleNone {
		errs = append(errs, "warmup ramps the LR from lr up to the scaled LR, and with no LR scaling rule there is nothing to ramp")
	}
	if c.AdaptRegime && r.Batch <= r.BaseBatch {
		errs = append(errs, fmt.Sprintf("regime adaptation trains batch/base batch times the epochs, and the batch %d is not above the base batch %d: it would change nothing", r.Batch, r.BaseBatch))
	}
	if c.IncreaseBatch {
		switch first := int(math.Round(float64(r.Batch) / r.DecayFactor)); {
		case len(c.DecayEpochs) == 0:
			errs = append(errs, "increase-batch grows the batch at the decay epochs, and there are none")
		case r.batchGrowths(r.Epochs+1) == 0:
			errs = append(errs, fmt.Sprintf("increase-batch would never grow the batch: its first growth, %d → %d, passes the max batch %d, so every decay stays an LR decay (plain step decay); set a max batch of at least %d", r.Batch, first, r.MaxBatch, first))
		}
	}
	if largest := r.maxBatchSize(); c.GhostBatch > 0 && c.GhostBatch >= largest {
		errs = append(errs, fmt.Sprintf("ghost batch %d is not smaller than the largest batch %d: it would normalize whole batches, as plain batch norm does", c.GhostBatch, largest))
	}
	return errs
}

// Optimizer is the rule that turns gradients into parameter updates.
type Optimizer string

const (
	// MomentumSGD is SGD with momentum (Config.Momentum) and L2 weight
	// decay, the zero Optimizer.
	MomentumSGD Optimizer = "momentum-sgd"
	// Adam is torch.optim.Adam: bias-corrected moments (Config.Beta1,
	// Beta2, Eps), weight decay added to the gradient.
	Adam Optimizer = "adam"
	// AdamW is torch.optim.AdamW: Adam with decoupled weight decay, w
	// shrinking by lr·WeightDecay·w at each step.
	AdamW Optimizer = "adamw"
)

// PyTorch's defaults of Adam's settings.
const (
	DefaultBeta1 = 0.9
	DefaultBeta2 = 0.999
	DefaultEps   = 1e-8
)

// IsAdam says whether o is Adam or AdamW, which keep two moments per
// parameter and count their steps.
func (o Optimizer) IsAdam() bool { return o == Adam || o == AdamW }

func (c Config) validateOptimizer() []string {
	var errs []string
	switch {
	case c.Optimizer.IsAdam():
		if c.Momentum != 0 {
			errs = append(errs, fmt.Sprintf("momentum %g is momentum SGD's; %s takes beta1 and beta2 instead", c.Momentum, c.Optimizer))
		}
		if !(c.Beta1 >= 0 && c.Beta1 < 1) || !(c.Beta2 >= 0 && c.Beta2 < 1) {
			errs = append(errs, fmt.Sprintf("beta1 and beta2 must be in [0, 1), got %g and %g", c.Beta1, c.Beta2))
		}
		if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
			errs = append(errs, fmt.Sprintf("eps must be a positive number, got %g", c.Eps))
		}
	case c.Optimizer == "" || c.Optimizer == MomentumSGD:
		if !(c.Momentum >= 0 && c.Momentum < 1) {
			errs = append(errs, fmt.Sprintf("momentum must be in [0, 1), got %g", c.Momentum))
		}
		if c.Beta1 != 0 || c.Beta2 != 0 || c.Eps != 0 {
			errs = append(errs, fmt.Sprintf("beta1, beta2 and eps (%g, %g, %g) are Adam's settings, and the optimizer is momentum SGD", c.Beta1, c.Beta2, c.Eps))
		}
	default:
		errs = append(errs, fmt.Sprintf("unknown optimizer %q (want %s, %s or %s)", c.Optimizer, MomentumSGD, Adam, AdamW))
	}
	return errs
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
	TransferSeconds float64 `json:"transfer_seconds"`
	ComputeSeconds  float64 `json:"compute_seconds"`
	UpdateSeconds   float64 `json:"update_seconds"`
	// EvalSeconds is the wall time of the evaluation on the test set
	// after the training pass (Seconds + EvalSeconds is the epoch's).
	EvalSeconds float64 `json:"eval_seconds"`
	StepLosses  Losses  `json:"step_losses,omitempty"` // mean loss of each batch
}

// Losses are per-step losses. In JSON a non-finite one (the step a run
// diverged at) is null, which encoding/json would refuse to write.
type Losses []float32

func (ls Losses) MarshalJSON() ([]byte, error) {
	b := []byte{'['}
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, float64(l), 'g', -1, 32)
		}
	}
	return append(b, ']'), nil
}

func (ls *Losses) UnmarshalJSON(b []byte) error {
	var vs []*float32
	if err := json.Unmarshal(b, &vs); err != nil {
		return err
	}
	*ls = make(Losses, len(vs))
	for i, v := range vs {
		(*ls)[i] = float32(math.NaN())
		if v != nil {
			(*ls)[i] = *v
		}
	}
	return nil
}

// Trainer trains a Model on one device.
type Trainer struct {
	config Config // resolved: defaults filled in, regime adaptation applied
	Model  *Model
	d      device.Device

	train, test           *data.Dataset
	trainLoader, evalLoad data.Loader

	dlogits     device.Buffer
	stepLosses  device.Buffer // one slot per step of an epoch
	stepCorrect device.Buffer
	hostLosses  []float32 // where Partial reads stepLosses into
	// guard is the device's divergence flag (see device.Device's
	// SoftmaxCrossEntropy): 0, or the first step of the epoch, from 1,
	// whose loss was not finite; from it on every update is a no-op.
	guard        device.Buffer
	hostGuard    []int32         // where checkGuard reads it into
	diverged     error           // the divergence a checkpoint found (see Epoch)
	events       [6]device.Event // see Epoch
	totalUpdates int
	pos          position     // where the run stands (see resume.go)
	completed    []EpochStats // the epochs done, restored ones included
	trace        *trace.Timeline
	params       []*param // Model.params(), listed once so that a step allocates nothing

	// optimizerSteps counts Adam's updates, the t of its bias corrections
	// (Step is also called outside Epoch, which counts totalUpdates).
	optimizerSteps int

	// With Config.Graph: the device's graphs, the forward and backward
	// graphs by what they bake in (nil: seen once, not captured yet), the
	// update graphs by learning rate.
	grapher      device.Grapher
	stepGraphs   map[stepGraphKey]device.Graph
	updateGraphs map[float32]device.Graph
	lastLR       float32
}

// stepGraphKey is what a captured forward and backward pass bakes in: the
// buffers the loader returned (a double-buffering loader alternates two) and
// the rows (the last batch of an epoch may be short; the batch may grow).
type stepGraphKey struct {
	x, labels device.Buffer
	rows      int
}

// NewTrainer builds the model and the loaders for cfg on d.
func NewTrainer(d device.Device, cfg Config, train, test *data.Dataset) (*Trainer, error) {
	if err := cfg.Validate(train.Len()); err != nil {
		return nil, err
	}
	grapher, ok := d.(device.Grapher)
	if cfg.Graph && !ok {
		return nil, fmt.Errorf("the %s device cannot replay steps as CUDA graphs: drop --graph (it saves kernel launch costs, which only a GPU has)", d.Info().Kind)
	}
	if test.Features() != train.Features() || test.Classes != train.Classes {
		return nil, fmt.Errorf("test set %s (%d features, %d classes) does not match training set %s (%d, %d)",
			test.Name, test.Features(), test.Classes, train.Name, train.Features(), train.Classes)
	}
	arch, err := cfg.arch(train.Features(), train.Classes)
	if err != nil {
		return nil, err
	}
	if err := checkMemory(cfg, ShapeOf(train, test), d, false); err != nil {
		return nil, err
	}
	cfg = cfg.Resolved()
	maxBatch := cfg.maxBatchSize()
	maxRows := max(maxBatch, cfg.EvalBatch)
	model, err := arch.build(d, maxRows, cfg.Seed)
	if err != nil {
		return nil, err
	}
	t := &Trainer{config: cfg, Model: model, d: d, train: train, test: test, params: model.params()}
	if cfg.Graph {
		t.grapher, t.stepGraphs, t.updateGraphs = grapher, map[stepGraphKey]device.Graph{}, map[float32]device.Graph{}
	}
	if t.trainLoader, err = data.NewLoader(d, train, maxBatch, cfg.Transfer); err != nil {
		return nil, err
	}
	if t.evalLoad, err = data.NewLoader(d, test, cfg.EvalBatch, cfg.Transfer); err != nil {
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
	t.hostLosses = make([]float32, steps)
	if cfg.Optimizer.IsAdam() {
		for _, p := range t.params {
			if p.SecondMoment, err = d.Alloc(device.Float32, p.Size()); err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
		}
	}
	if t.guard, err = d.Alloc(device.Int32, 1); err != nil {
		return nil, err
	}
	t.hostGuard = make([]int32, 1)
	for i := range t.events {
		if t.events[i], err = d.NewEvent(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Config is the trainer's settings, resolved (defaults filled in, regime
// adaptation applied): a copy, since the trainer's buffers were sized from
// them and they cannot change.
func (t *Trainer) Config() Config {
	c := t.config
	c.Hidden, c.DecayEpochs = slices.Clone(c.Hidden), slices.Clone(c.DecayEpochs)
	return c
}

// TotalUpdates counts the parameter updates made so far.
func (t *Trainer) TotalUpdates() int { return t.totalUpdates }

// Device is the device the trainer runs on.
func (t *Trainer) Device() device.Device { return t.d }

// StepsIn counts the batches of an epoch (1-based); the last may be short.
func (t *Trainer) StepsIn(epoch int) int { return t.config.stepsIn(epoch, t.train.Len()) }

// Epoch trains one pass over the training set in a fresh order, then
// evaluates on the test set. onStep, if not nil, is told after every step.
// A cancelled ctx stops the epoch between steps, where Checkpoint can save
// it. An epoch that a restored checkpoint left half done goes on from there.
func (t *Trainer) Epoch(ctx context.Context, epoch int, onStep func(done, total int)) (EpochStats, error) {
	d, cfg := t.d, t.config
	order := data.Permutation(t.train.Len(), cfg.Seed, epoch)
	steps, batchSize := t.StepsIn(epoch), cfg.batchAt(epoch)
	stats := EpochStats{Epoch: epoch, Samples: t.train.Len(), Batch: batchSize}
	if t.pos.Epoch != epoch {
		t.pos = position{Epoch: epoch}
	}
	t.Model.setTraining(true)
	for step := t.pos.Step; step < steps; step++ {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		trafficBefore, start := d.Traffic(), time.Now()
		batch := order[step*batchSize : min((step+1)*batchSize, len(order))]
		rows := len(batch)
		var next []int32
		if step+1 < steps {
			next = order[(step+1)*batchSize : min((step+2)*batchSize, len(order))]
		}
		t.pos.LR = cfg.lrAt(epoch, step, steps)
		if err := t.Step(step, batch, next, t.pos.LR); err != nil {
			return stats, err
		}
		if err := d.Sync(); err != nil {
			return stats, fmt.Errorf("step %d of epoch %d: %w", step, epoch, err)
		}
		if err := t.traceStep(epoch, step, rows); err != nil {
			return stats, err
		}
		// Events: 0 load 1 forward 2 backward 3 update 4 prefetch 5.
		for i, acc := range [...]*float64{&t.pos.TransferSeconds, &t.pos.ComputeSeconds, &t.pos.ComputeSeconds, &t.pos.UpdateSeconds, &t.pos.TransferSeconds} {
			el, err := d.EventElapsed(t.events[i], t.events[i+1])
			if err != nil {
				return stats, err
			}
			*acc += el.Seconds()
		}
		traffic := d.Traffic().Sub(trafficBefore)
		t.pos.H2DBytes += traffic.HostToDeviceBytes
		t.pos.H2DCopies += traffic.HostToDeviceCopies
		t.pos.Seconds += time.Since(start).Seconds()
		t.pos.Step = step + 1
		t.totalUpdates++
		// The guard stopped the updates at the first non-finite loss; the
		// run stops within guardEvery steps of it, or at the hook's next
		// checkpoint, which reads the guard too and refuses.
		if t.pos.Step%guardEvery == 0 || t.pos.Step == steps {
			if err := t.checkGuard(); err != nil {
				return stats, err
			}
		}
		if onStep != nil {
			onStep(step+1, steps)
			if t.diverged != nil {
				return stats, t.diverged
			}
		}
	}
	// Interrupted after the last step: stop before the evaluation, which
	// a resumed run does.
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	p := t.pos
	stats.Seconds, stats.LR = p.Seconds, p.LR
	stats.H2DBytes, stats.H2DCopies = p.H2DBytes, p.H2DCopies
	stats.TransferSeconds, stats.ComputeSeconds, stats.UpdateSeconds = p.TransferSeconds, p.ComputeSeconds, p.UpdateSeconds
	stats.Updates, stats.TotalUpdates = steps, t.totalUpdates
	stats.SamplesPerSec = float64(stats.Samples) / stats.Seconds

	losses, loss, acc, err := t.readSteps(steps, batchSize, t.train.Len())
	if err != nil {
		return stats, err
	}
	stats.StepLosses, stats.TrainLoss, stats.TrainAccuracy = losses, loss, acc
	evalStart := time.Now()
	if stats.TestLoss, stats.TestAccuracy, err = t.Evaluate(t.test); err != nil {
		return stats, err
	}
	stats.EvalSeconds = time.Since(evalStart).Seconds()
	t.completed = append(t.completed, stats)
	t.pos = position{Epoch: epoch + 1}
	return stats, nil
}

// Step trains on one batch, the samples at indices batch: it loads them,
// runs the model forward and backward, writes the batch's mean loss and
// correct count into slot of the per-step results, and updates the
// parameters at learning rate lr. next, if not empty, is the following
// step's batch, which a pinned-async loader starts moving. Step does not
// wait for the device; in steady state it allocates nothing.
func (t *Trainer) Step(slot int, batch, next []int32, lr float64) error {
	d, cfg, rows := t.d, t.config, len(batch)
	d.RecordEvent(t.events[0])
	x, labels, err := t.trainLoader.Load(batch)
	if err != nil {
		return err
	}
	d.RecordEvent(t.events[1])
	graph, err := t.stepGraph(x, labels, rows)
	if err != nil {
		return err
	}
	if graph != nil {
		t.grapher.Launch(graph, slot)
		d.RecordEvent(t.events[2]) // one graph: the backward pass's time is counted in the forward's
	} else {
		t.forwardLoss(x, labels, slot, rows)
		d.RecordEvent(t.events[2])
		t.Model.backward(d, t.dlogits, rows)
	}
	d.RecordEvent(t.events[3])
	if err := t.update(lr, float32(cfg.Momentum), float32(cfg.WeightDecay)); err != nil {
		return err
	}
	d.RecordEvent(t.events[4])
	// pinned-async starts moving the next batch while this step runs.
	if len(next) > 0 {
		if err := t.trainLoader.Prefetch(next); err != nil {
			return err
		}
	}
	d.RecordEvent(t.events[5])
	return nil
}

// forwardLoss runs the model forward and writes the batch's mean loss and
// correct count into slot, and the loss's gradient into dlogits.
func (t *Trainer) forwardLoss(x, labels device.Buffer, slot, rows int) {
	d, classes := t.d, t.train.Classes
	logits := t.Model.forward(d, x, rows)
	// The loss is the batch mean, so its gradient carries 1/rows.
	d.SoftmaxCrossEntropy(t.dlogits, t.stepLosses, logits, labels, t.guard, slot, rows, classes, 1/float32(rows))
	d.CountCorrect(t.stepCorrect, logits, labels, slot, rows, classes)
}

// stepGraph returns the graph of forward, loss and backward for these
// buffers and rows, captured at slot 0 (Launch moves it to the step's
// slot). It returns nil, and the step runs call by call, when graphs are off
// and the first time the buffers and rows are seen: that first step also
// lets cuBLAS and the driver finish their lazy setup, which a capture would
// refuse.
func (t *Trainer) stepGraph(x, labels device.Buffer, rows int) (device.Graph, error) {
	if t.grapher == nil {
		return nil, nil
	}
	key := stepGraphKey{x, labels, rows}
	g, seen := t.stepGraphs[key]
	if !seen {
		t.stepGraphs[key] = nil
		return nil, nil
	}
	if g == nil {
		var err error
		g, err = t.grapher.Capture(func() {
			t.forwardLoss(x, labels, 0, rows)
			t.Model.backward(t.d, t.dlogits, rows)
		})
		if err != nil {
			return nil, fmt.Errorf("capturing the training step: %w", err)
		}
		t.stepGraphs[key] = g
	}
	return g, nil
}

// update applies the optimizer at learning rate lr64; momentum SGD takes
// it in float32 (lr). With graphs momentum SGD replays
// the update once lr repeats: a graph bakes lr in, and schedules change it
// (warmup at every step, decay now and then), so a step whose lr differs
// from the step before runs the update call by call, and a graph is
// captured for each rate that lasts.
func (t *Trainer) update(lr64 float64, momentum, weightDecay float32) error {
	if t.config.Optimizer.IsAdam() {
		// Call by call, graphs or not: the bias corrections change at
		// every step, and a graph would bake one step's in.
		t.adam(lr64)
		return nil
	}
	lr := float32(lr64)
	if t.grapher == nil || lr != t.lastLR {
		t.lastLR = lr
		t.momentumSGD(lr, momentum, weightDecay)
		return nil
	}
	g, ok := t.updateGraphs[lr]
	if !ok {
		var err error
		// The closure is made here only: made on every step, it would
		// allocate on every step.
		if g, err = t.grapher.Capture(func() { t.momentumSGD(lr, momentum, weightDecay) }); err != nil {
			return fmt.Errorf("capturing the update: %w", err)
		}
		t.updateGraphs[lr] = g
	}
	t.grapher.Launch(g, 0)
	return nil
}

func (t *Trainer) momentumSGD(lr, momentum, weightDecay float32) {
	for _, p := range t.params {
		t.d.MomentumSGD(p.Value, p.Grad, p.Velocity, t.guard, p.Size(), lr, momentum, weightDecay)
	}
}

// adam applies Adam or AdamW at learning rate lr, which NewAdamStep takes
// in float64, as PyTorch does. A step the guard makes a no-op is counted
// too; the run stops at it anyway (see checkGuard).
func (t *Trainer) adam(lr float64) {
	c := t.config
	t.optimizerSteps++
	s := device.NewAdamStep(lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, t.optimizerSteps, c.Optimizer == AdamW)
	for _, p := range t.params {
		t.d.Adam(p.Value, p.Grad, p.Velocity, p.SecondMoment, t.guard, p.Size(), s)
	}
}

// Evaluate returns the mean loss and the accuracy of the model on ds.
func (t *Trainer) Evaluate(ds *data.Dataset) (loss, accuracy float64, err error) {
	t.Model.setTraining(false)
	loader := t.evalLoad
	if ds != t.test {
		if loader, err = data.NewLoader(t.d, ds, t.config.EvalBatch, t.config.Transfer); err != nil {
			return 0, 0, err
		}
		defer loader.Close()
	}
	rows := t.config.EvalBatch
	steps := (ds.Len() + rows - 1) / rows
	idx := make([]int32, rows)
	start := t.trace.Mark()
	for step := 0; step < steps; step++ {
		n := min(rows, ds.Len()-step*rows)
		for i := range n {
			idx[i] = int32(step*rows + i)
		}
		x, labels, err := loader.Load(idx[:n])
		if err != nil {
			return 0, 0, err
		}
		logits := t.Model.forward(t.d, x, n)
		t.d.SoftmaxCrossEntropy(nil, t.stepLosses, logits, labels, nil, step, n, ds.Classes, 0) // no guard: evaluating trains nothing
		t.d.CountCorrect(t.stepCorrect, logits, labels, step, n, ds.Classes)
	}
	if _, loss, accuracy, err = t.readSteps(steps, rows, ds.Len()); err != nil {
		return 0, 0, err
	}
	return loss, accuracy, t.traceEval(start, ds)
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

// guardEvery is how often, in steps, Epoch reads the guard (and at the
// epoch's end, and Checkpoint at every checkpoint). A read is a 4-byte
// device→host copy, one driver round trip: every 64 steps its cost is
// spread over the steps, and a diverged run does at most 63 steps of no-op
// updates before it stops. (Not measured on a GPU yet.)
const guardEvery = 64

// checkGuard reads the guard and returns ErrDiverged, naming the first
// non-finite step, when it is set. Steps are counted from 1, as the
// interruption message counts steps done.
func (t *Trainer) checkGuard() error {
	if err := t.d.Sync(); err != nil {
		return err
	}
	if err := device.Download(t.d, t.hostGuard, t.guard); err != nil {
		return err
	}
	step := int(t.hostGuard[0])
	if step == 0 {
		return nil
	}
	losses, err := t.stepLossesSoFar()
	if err != nil {
		return err
	}
	if step > len(losses) {
		return fmt.Errorf("the divergence guard names step %d, beyond the %d steps done", step, len(losses))
	}
	where := ""
	if tensor := t.divergedTensor(); tensor != "" {
		where = fmt.Sprintf("; the first non-finite tensor in forward order is %s", tensor)
	}
	return fmt.Errorf("%w: the loss of step %d of epoch %d is %g, stopped after step %d%s (try a smaller learning rate)",
		ErrDiverged, step, max(t.pos.Epoch, 1), losses[step-1], len(losses), where)
}

// stepLossesSoFar downloads the losses of the steps done in the epoch under
// way, into a buffer it reuses: a copy outlives the next call only if cloned.
func (t *Trainer) stepLossesSoFar() ([]float32, error) {
	losses := t.hostLosses[:t.pos.Step]
	if len(losses) == 0 {
		return losses, nil
	}
	if err := t.d.Sync(); err != nil {
		return nil, err
	}
	return losses, device.Download(t.d, losses, t.stepLosses)
}

// StepLoss waits for the device and reads the mean loss that Step wrote
// into slot: the LR range test (bench/lrfind) reads each step's as it goes.
func (t *Trainer) StepLoss(slot int) (float64, error) {
	if slot < 0 || slot >= len(t.hostLosses) {
		return 0, fmt.Errorf("step slot %d is outside 0..%d", slot, len(t.hostLosses)-1)
	}
	losses := t.hostLosses[:slot+1]
	if err := t.d.Sync(); err != nil {
		return 0, err
	}
	if err := device.Download(t.d, losses, t.stepLosses); err != nil {
		return 0, err
	}
	return float64(losses[slot]), nil
}

// RunningLoss is the mean loss of the last window steps of the epoch under
// way (fewer at its start), as a progress bar shows it; it waits for the
// device. It is NaN before the epoch's first step.
func (t *Trainer) RunningLoss(window int) (float64, error) {
	losses, err := t.stepLossesSoFar()
	if err != nil {
		return 0, err
	}
	losses = losses[max(0, len(losses)-window):]
	sum := 0.0
	for _, l := range losses {
		sum += float64(l)
	}
	return sum / float64(len(losses)), nil
}

// Partial is the epoch under way, when it has steps done: its position and
// the losses of those steps (an interrupted or diverged run reports them).
func (t *Trainer) Partial() (*EpochStats, error) {
	if t.pos.Step == 0 {
		return nil, nil
	}
	losses, err := t.stepLossesSoFar()
	if err != nil {
		return nil, err
	}
	losses = slices.Clone(losses)
	epoch := max(t.pos.Epoch, 1)
	return &EpochStats{Epoch: epoch, Batch: t.config.batchAt(epoch), LR: t.pos.LR, Updates: t.pos.Step, TotalUpdates: t.totalUpdates,
		Seconds: t.pos.Seconds, H2DBytes: t.pos.H2DBytes, H2DCopies: t.pos.H2DCopies, StepLosses: losses}, nil
}

// ErrDiverged is wrapped by the error of a run whose loss became NaN or
// infinite. Large batches at large learning rates do diverge: the study
// records it as a result.
var ErrDiverged = errors.New("training diverged")

// Hooks are told about a run's progress; any of them may be nil.
type Hooks struct {
	Step  func(epoch, done, total int) // after every training step
	Epoch func(EpochStats)             // after every epoch, with its stats
}

// Run trains up to cfg.Epochs epochs, from where a restored checkpoint left
// off, and returns every epoch's stats (restored ones included); on an error
// it returns the epochs completed before it.
func (t *Trainer) Run(ctx context.Context, hooks Hooks) ([]EpochStats, error) {
	for e := max(t.pos.Epoch, 1); e <= t.config.Epochs; e++ {
		var onStep func(done, total int)
		if hooks.Step != nil {
			onStep = func(done, total int) { hooks.Step(e, done, total) }
		}
		s, err := t.Epoch(ctx, e, onStep)
		if err != nil {
			return slices.Clone(t.completed), err
		}
		if hooks.Epoch != nil {
			hooks.Epoch(s)
		}
	}
	return slices.Clone(t.completed), nil
}

// Position is the epoch under way (1-based) and the steps done in it.
func (t *Trainer) Position() (epoch, step int) { return max(t.pos.Epoch, 1), t.pos.Step }
