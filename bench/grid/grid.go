// Package grid measures the critical batch of a model directly: for each
// batch size and each learning rate on a log grid it trains the same model
// from the same seeds until the smoothed training loss reaches every target
// (grid.go, smooth.go), picks the best learning rate per batch size and
// target, fits S(B) = S_min(1 + B_crit/B) with bootstrap intervals over
// seeds (fit.go, analyze.go), holds the gradient noise scale measured along
// training against it (noise.go), and writes plots, CSV and JSON (report.go,
// plots.go). Every run is saved as it finishes, claimed and sharded as the
// study's are (bench/internal/runstore), so a stopped grid resumes.
package grid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
)

// Plan is what a grid measures. Its JSON form is kept in the grid's
// directory (plan.json): a directory holds the runs of one plan only.
type Plan struct {
	Dataset      data.Name        `json:"dataset"`
	TrainSamples int              `json:"train_samples"` // 0: all
	TestSamples  int              `json:"test_samples"`  // 0: all (each epoch is evaluated on them)
	Hidden       []int            `json:"hidden"`
	Optimizer    engine.Optimizer `json:"optimizer"` // momentum-sgd, adam or adamw
	Momentum     float64          `json:"momentum"`  // momentum SGD's
	Beta1        float64          `json:"beta1,omitempty"`
	Beta2        float64          `json:"beta2,omitempty"`
	Eps          float64          `json:"eps,omitempty"`
	Batches      []int            `json:"batches"`
	Seeds        []uint64         `json:"seeds"`
	// The learning rates: LRs for every batch size when given; otherwise
	// LRCenter at BaseBatch, moved to each batch by LRScale (none, linear,
	// sqrt), times LRFactor^k for k = −LRSteps … LRSteps.
	LRs       []float64     `json:"lrs,omitempty"`
	LRCenter  float64       `json:"lr_center,omitempty"`
	LRScale   engine.LRRule `json:"lr_scale,omitempty"`
	BaseBatch int           `json:"base_batch,omitempty"`
	LRSteps   int           `json:"lr_steps,omitempty"`
	LRFactor  float64       `json:"lr_factor,omitempty"`
	// Targets are training losses, each reached when the smoothed loss
	// first falls to it; a run stops when it has reached all of them, or
	// after MaxEpochs.
	Targets       []float64 `json:"targets"`
	MaxEpochs     int       `json:"max_epochs"`
	SmoothSamples int       `json:"smooth_samples"` // the smoothing window, in samples (smooth.go)
	// The noise scale: one run per seed at NoiseBatch and the grid's
	// middle LR there, measuring NoisePairs gradient pairs of NoiseSmall
	// and NoiseBig samples every NoiseEvery steps. NoiseBatch 0: none.
	NoiseBatch int `json:"noise_batch"`
	NoiseSmall int `json:"noise_small,omitempty"`
	NoiseBig   int `json:"noise_big,omitempty"`
	NoisePairs int `json:"noise_pairs,omitempty"`
	NoiseEvery int `json:"noise_every,omitempty"`
}

// LRsAt is the learning rates tried at batch b, ascending.
func (p Plan) LRsAt(b int) []float64 {
	if len(p.LRs) > 0 {
		lrs := slices.Clone(p.LRs)
		slices.Sort(lrs)
		return lrs
	}
	center := engine.Config{LR: p.LRCenter, Batch: b, BaseBatch: p.BaseBatch, LRScale: p.LRScale}.ScaledLR()
	var lrs []float64
	for k := -p.LRSteps; k <= p.LRSteps; k++ {
		lrs = append(lrs, roundLR(center*math.Pow(p.LRFactor, float64(k))))
	}
	return lrs
}

// roundLR keeps 4 significant digits, so that a rate reads the same in a
// run's name, its settings and a table.
func roundLR(lr float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(lr, 'g', 4, 64), 64)
	return v
}

// Validate checks the plan against a training set of n samples.
func (p Plan) Validate(n int) error {
	switch {
	case len(p.Batches) == 0 || len(p.Seeds) == 0 || len(p.Targets) == 0:
		return errors.New("a grid needs batch sizes, seeds and loss targets")
	case len(p.LRs) == 0 && !(p.LRCenter > 0 && p.LRFactor > 1 && p.LRSteps >= 0 && p.BaseBatch > 0):
		return fmt.Errorf("give --lrs, or --lr-center > 0 with --lr-factor > 1, --lr-steps ≥ 0 and --base-batch > 0 (got %g, %g, %d, %d)", p.LRCenter, p.LRFactor, p.LRSteps, p.BaseBatch)
	case p.MaxEpochs < 1:
		return fmt.Errorf("--max-epochs must be at least 1, got %d", p.MaxEpochs)
	case p.SmoothSamples < 1:
		return fmt.Errorf("--smooth-samples must be at least 1, got %d", p.SmoothSamples)
	case p.NoiseBatch < 0 || p.NoiseBatch > 0 && !(p.NoiseSmall > 0 && p.NoiseBig > p.NoiseSmall && p.NoiseBig <= n && p.NoisePairs > 0 && p.NoiseEvery > 0):
		return fmt.Errorf("the noise runs need 0 < --noise-small < --noise-big ≤ %d training samples, --noise-pairs > 0 and --noise-every > 0", n)
	}
	for _, t := range p.Targets {
		if !(t > 0) || math.IsInf(t, 0) {
			return fmt.Errorf("loss targets must be positive numbers, got %v", p.Targets)
		}
	}
	for _, lr := range p.LRs {
		if !(lr > 0) || math.IsInf(lr, 0) {
			return fmt.Errorf("learning rates must be positive numbers, got %v", p.LRs)
		}
	}
	if len(dedupe(p.Batches)) != len(p.Batches) || len(dedupe(p.Seeds)) != len(p.Seeds) || len(dedupe(p.LRs)) != len(p.LRs) {
		return fmt.Errorf("batch sizes, seeds and learning rates must each be distinct: %v, %v, %v", p.Batches, p.Seeds, p.LRs)
	}
	for _, s := range p.specs() {
		if err := s.Config.Validate(n); err != nil {
			return fmt.Errorf("run %s: %w", s.ID, err)
		}
	}
	return nil
}

func dedupe[T comparable](xs []T) []T {
	var out []T
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// Kinds of run.
const (
	Train = "train" // train to the targets at one batch size and LR
	Noise = "noise" // the same, measuring the noise scale along the way
)

// spec is one planned run.
type spec struct {
	ID     string
	Kind   string
	Config engine.Config
}

// config is a run's settings: constant LR, no schedule, no warmup, so that
// steps to a loss measure the batch size and the LR alone.
func (p Plan) config(batch int, lr float64, seed uint64) engine.Config {
	c := engine.Config{
		Hidden: p.Hidden, Batch: batch, LR: lr, Optimizer: p.Optimizer, Epochs: p.MaxEpochs, Seed: seed,
		EvalBatch: 1000, LRScale: engine.ScaleNone,
	}
	if p.Optimizer.IsAdam() {
		c.Beta1, c.Beta2, c.Eps = p.Beta1, p.Beta2, p.Eps
	} else {
		c.Momentum = p.Momentum
	}
	return c
}

// specs lists the runs, seed by seed (a grid stopped early has whole seeds),
// each seed's batches from the smallest, then its noise run.
func (p Plan) specs() []spec {
	var specs []spec
	for _, seed := range p.Seeds {
		for _, b := range p.Batches {
			for _, lr := range p.LRsAt(b) {
				specs = append(specs, spec{fmt.Sprintf("b%d_lr%g_s%d", b, lr, seed), Train, p.config(b, lr, seed)})
			}
		}
		if p.NoiseBatch > 0 {
			specs = append(specs, spec{fmt.Sprintf("noise_b%d_s%d", p.NoiseBatch, seed), Noise, p.config(p.NoiseBatch, p.noiseLR(), seed)})
		}
	}
	return specs
}

// noiseLR is the middle of the grid's rates at the noise batch.
func (p Plan) noiseLR() float64 {
	lrs := p.LRsAt(p.NoiseBatch)
	return lrs[len(lrs)/2]
}

// Options say where and how a grid runs.
type Options struct {
	Dir          string // plan.json, runs/<id>.json, then the report
	Device       string
	DataDir      string
	Log          io.Writer
	Shard        runstore.Shard
	ClaimTimeout time.Duration
}

// Execute runs every run of its shard that has no result in opts.Dir yet
// and that no live process has claimed, saving each as it finishes. It
// returns the IDs of the plan's runs still without a result (other shards',
// or none).
func Execute(ctx context.Context, p Plan, opts Options) (missing []string, err error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	train, test, err := p.load(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(train.Len()); err != nil {
		return nil, err
	}
	runDir := filepath.Join(opts.Dir, "runs")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	if err := checkPlan(opts.Dir, p); err != nil {
		return nil, err
	}
	claims, err := runstore.NewClaimer(runDir, opts.ClaimTimeout)
	if err != nil {
		return nil, err
	}
	specs := p.specs()
	ids, costs := make([]string, len(specs)), make([]int, len(specs))
	for i, s := range specs {
		// Past the critical batch the samples to a loss grow with the
		// batch: the batch size is the best guess of a run's work.
		ids[i], costs[i] = s.ID, s.Config.Batch
	}
	jobs := runstore.Jobs(runDir, ids, opts.Shard.Pick(costs),
		func(i int, path string) error { _, err := loadRun(path, specs[i]); return err },
		func(i int, path string) error {
			s := specs[i]
			run, err := execute(ctx, s, p, opts.Device, train, test)
			if err == nil {
				err = save(path, run)
			}
			if err == nil {
				fmt.Fprintf(log, "[%d/%d] %s: %s (%d epochs, %.0f s)\n", i+1, len(specs), s.ID, run.outcome(), run.Epochs, run.Seconds)
			}
			return err
		})
	if err := claims.RunEach(jobs, log); err != nil {
		return nil, err
	}
	for _, s := range specs {
		if _, err := loadRun(runstore.ResultPath(runDir, s.ID), s); err != nil {
			missing = append(missing, s.ID)
		}
	}
	return missing, nil
}

func save(path string, r Run) error { return runstore.Save(path, r, runstore.Indented) }

// WriteRuns records plan p in dir and saves runs there as Execute would,
// for runs measured elsewhere (another tool, a synthetic grid): each is
// matched to the planned run of its kind, batch, LR and seed, whose name
// and settings it takes.
func WriteRuns(dir string, p Plan, runs []Run) error {
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o755); err != nil {
		return err
	}
	if err := checkPlan(dir, p); err != nil {
		return err
	}
	for _, r := range runs {
		i := slices.IndexFunc(p.specs(), func(s spec) bool {
			return s.Kind == r.Kind && s.Config.Batch == r.Batch && s.Config.LR == r.LR && s.Config.Seed == r.Seed
		})
		if i < 0 {
			return fmt.Errorf("no planned %s run at batch %d, lr %g, seed %d", r.Kind, r.Batch, r.LR, r.Seed)
		}
		s := p.specs()[i]
		r.Schema, r.ID, r.Config, r.Updates = runSchema, s.ID, s.Config.Resolved(), len(r.StepLosses)
		if err := save(runstore.ResultPath(filepath.Join(dir, "runs"), s.ID), r); err != nil {
			return err
		}
	}
	return nil
}

// load reads the plan's data.
func (p Plan) load(dir string) (train, test *data.Dataset, err error) {
	name := p.Dataset
	if name == "" {
		name = data.MNIST
	}
	if train, test, err = name.Load(dir); err != nil {
		return nil, nil, err
	}
	if p.TrainSamples > train.Len() {
		return nil, nil, fmt.Errorf("--train-samples %d is more than the %d training samples in %s", p.TrainSamples, train.Len(), dir)
	}
	if p.TrainSamples > 0 {
		train = train.Subset(p.TrainSamples)
	}
	if p.TestSamples > 0 {
		test = test.Subset(min(p.TestSamples, test.Len()))
	}
	return train, test, nil
}

// checkPlan records the plan on first use and refuses another plan later.
func checkPlan(dir string, p Plan) error {
	path := filepath.Join(dir, planFile)
	want, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil {
		var prev Plan
		if err := json.Unmarshal(old, &prev); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if got, _ := json.Marshal(prev); string(got) != string(want) {
			return fmt.Errorf("%s holds a grid with other settings (%s); use another --out directory", dir, path)
		}
		return nil
	}
	return runstore.Save(path, p, runstore.Indented)
}

const planFile = "plan.json"

// ReadPlan reads the plan of the grid in dir.
func ReadPlan(dir string) (Plan, error) {
	var p Plan
	b, err := os.ReadFile(filepath.Join(dir, planFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, fmt.Errorf("%s is not a grid directory: it has no %s", dir, planFile)
	} else if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%s: %w", filepath.Join(dir, planFile), err)
	}
	if len(p.Batches) == 0 || len(p.Seeds) == 0 || len(p.Targets) == 0 {
		return p, fmt.Errorf("%s: not a grid plan (no batch sizes, seeds or targets)", filepath.Join(dir, planFile))
	}
	return p, nil
}

// ReadRuns reads the results of the plan's runs in dir; runs without a
// valid result are left out and named in missing.
func ReadRuns(dir string, p Plan) (runs []Run, missing []string) {
	for _, s := range p.specs() {
		r, err := loadRun(runstore.ResultPath(filepath.Join(dir, "runs"), s.ID), s)
		if err != nil {
			missing = append(missing, s.ID)
			continue
		}
		runs = append(runs, r)
	}
	return runs, missing
}
