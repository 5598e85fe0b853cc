package study

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
)

// allExperiments are the experiments in the order of the report.
var allExperiments = []string{FixedLR, LRScaling, Schedule, Regime, Keskar, Cost, Noise}

// Presets are the built-in plans: "quick" runs in a few minutes on a
// 2-core CPU (training subsets of 20000 and, for Keskar, 5000 samples);
// "full" in about half an hour on that machine shared with others (30000
// samples, the whole test set; Keskar on 10000); "paper" at the papers'
// sizes (hours: all the data, B up to 8192, five seeds, 30-epoch runs);
// "tiny" in seconds, for the machinery. Only tiny and paper measure (g)
// with a grid (Preset.Grid): at quick's and full's sizes a grid of a few
// batch sizes, LRs and three seeds, each run trained to its loss targets,
// is tens of runs more than their budgets hold, so there (g) stays the
// estimate from the sweeps' one fit.
func Presets() map[string]Preset {
	quick := Preset{
		Name: "quick", TrainSamples: 20000, TestSamples: 5000, Hidden: []int{256},
		Epochs: 4, Seeds: []uint64{1, 2, 3}, Batches: []int{64, 256, 1024, 4096},
		BaseBatch: 64, BaseLR: 0.05, Momentum: 0.9,
		// Goyal et al.: warmup 5 of 90 epochs, decay ×0.1 at 1/3, 2/3 and
		// 8/9 of the run; a 4-epoch run gets half an epoch and one decay.
		LRRules: []engine.LRRule{engine.ScaleLinear, engine.ScaleSqrt}, WarmupEpochs: 0.5,
		ScalingDecayEpochs: []int{3}, ScalingDecayFactor: 0.1, ScalingMargin: 0.01,
		ScheduleEpochs: 6, DecayEpochs: []int{2, 4}, DecayFactor: 0.2,
		RegimeEpochs: 3, RegimeDecayEpochs: []int{2}, WeightDecay: 5e-4, LargeBatch: 512, GhostBatch: 64,
		Keskar: KeskarPlan{TrainSamples: 5000, Hidden: []int{256, 256}, SmallBatch: 256, LargeFraction: 0.1,
			LR: 1e-3, Target: 0.99, MaxEpochs: 100},
		Sharpness:  engine.SharpnessConfig{Epsilon: 1e-3, Samples: 1024, Steps: 5, Seed: 1},
		Hessian:    engine.HessianConfig{Samples: 1024, Iterations: 10, Epsilon: 1e-3, Seed: 1},
		Cost:       CostPlan{Rule: engine.ScaleSqrt, Target: 0.85, MaxEpochs: 6},
		NoiseSmall: 64, NoiseBig: 1024, NoiseSamples: 4,
	}
	// full is sized for half an hour on this shared 2-core machine: a
	// training subset of 30000, the whole test set, Keskar on 10000.
	full := quick
	full.Name, full.TrainSamples, full.TestSamples = "full", 30000, 0
	full.Keskar.TrainSamples, full.Keskar.MaxEpochs = 10000, 600 // LB (10 steps an epoch) needs hundreds on Fashion-MNIST
	full.Sharpness = engine.DefaultSharpness()
	full.Hessian = engine.DefaultHessian()
	full.Cost.Target = 0.8 // reachable on Fashion-MNIST by the large batches in 6 epochs
	full.NoiseSamples = 10

	paper := full
	paper.Name, paper.TrainSamples, paper.Hidden = "paper", 0, []int{256, 256}
	paper.Seeds = []uint64{1, 2, 3, 4, 5}
	paper.Batches = []int{64, 128, 256, 512, 1024, 2048, 4096, 8192}
	paper.Epochs, paper.WarmupEpochs, paper.ScalingDecayEpochs = 30, 5.0/3, []int{10, 20, 27}
	paper.ScheduleEpochs, paper.DecayEpochs = 30, []int{10, 20}
	paper.RegimeEpochs, paper.RegimeDecayEpochs, paper.LargeBatch = 30, []int{10, 20}, 1024
	paper.Keskar.TrainSamples, paper.Keskar.MaxEpochs = 60000, 1500
	paper.Keskar.Hidden = []int{512, 512}
	paper.Cost.MaxEpochs = 30
	paper.Cost.Target = 0.88
	// The grid of issue 17 at batchlab grid's defaults, on the paper's model
	// and batch sizes: 8 batches × 5 LRs × 5 seeds, up to 20 epochs each.
	paper.Grid = &grid.Plan{
		TestSamples: 1000, Hidden: paper.Hidden, Optimizer: engine.MomentumSGD, Momentum: 0.9, Batches: paper.Batches,
		LRCenter: 0.1, LRScale: engine.ScaleSqrt, BaseBatch: 128, LRSteps: 2, LRFactor: 2,
		Targets: []float64{0.5, 0.3, 0.2, 0.15}, MaxEpochs: 20, SmoothSamples: 2048,
		NoiseBatch: 128, NoiseSmall: 128, NoiseBig: 2048, NoisePairs: 2, NoiseEvery: 16,
	}

	// tiny runs in seconds on testdata/mnist-subset: it tests the machinery
	// (sharding, a scheduler's array), and its findings mean little.
	tiny := quick
	tiny.Name, tiny.TrainSamples, tiny.TestSamples = "tiny", 1000, 200
	tiny.Hidden, tiny.Epochs, tiny.Seeds = []int{16}, 2, []uint64{1}
	tiny.Batches, tiny.BaseBatch, tiny.LargeBatch, tiny.GhostBatch = []int{16, 64, 256}, 16, 128, 16
	tiny.ScalingDecayEpochs = []int{1}
	tiny.ScheduleEpochs, tiny.DecayEpochs = 2, []int{1}
	tiny.RegimeEpochs, tiny.RegimeDecayEpochs = 2, []int{1}
	tiny.Keskar = KeskarPlan{TrainSamples: 500, Hidden: []int{32}, SmallBatch: 25, LargeFraction: 0.1, LR: 3e-3, Target: 0.9, MaxEpochs: 10}
	tiny.Sharpness = engine.SharpnessConfig{Epsilon: 1e-3, Samples: 200, Steps: 2, Seed: 1}
	tiny.Hessian = engine.HessianConfig{Samples: 200, Iterations: 3, Epsilon: 1e-3, Seed: 1}
	tiny.Cost = CostPlan{Rule: engine.ScaleSqrt, Target: 0.5, MaxEpochs: 2}
	tiny.NoiseSmall, tiny.NoiseBig, tiny.NoiseSamples = 16, 128, 2
	tiny.Grid = &grid.Plan{
		TrainSamples: 1000, TestSamples: 200, Hidden: []int{16}, Optimizer: engine.MomentumSGD, Momentum: 0.9,
		Batches: []int{16, 64, 256}, LRs: []float64{0.05, 0.2}, Targets: []float64{1.5, 0.8}, MaxEpochs: 3, SmoothSamples: 64,
		NoiseBatch: 16, NoiseSmall: 16, NoiseBig: 128, NoisePairs: 1, NoiseEvery: 8,
	}
	return map[string]Preset{"quick": quick, "full": full, "paper": paper, "tiny": tiny}
}

// ReadPlan reads a study plan from a file: JSON, or YAML (.yaml, .yml),
// with the keys of Preset's JSON form, so the preset.json a study writes
// is a plan. Unknown keys are errors (a misspelt key would silently keep a
// default), and the plan is validated.
func ReadPlan(path string) (Preset, error) {
	var p Preset
	b, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml") {
		// YAML into plain values, then through JSON: one set of keys (the
		// json tags) for both formats.
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return p, fmt.Errorf("plan %s: %w", path, err)
		}
		if b, err = json.Marshal(v); err != nil {
			return p, fmt.Errorf("plan %s: %w", path, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("plan %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("plan %s: %w", path, err)
	}
	return p, nil
}

// Validate checks a plan before anything runs: every planned run's
// settings (engine.Config.Validate) and protocol, and what they are made of.
func (p Preset) Validate() error {
	var errs []string
	if p.Name == "" {
		errs = append(errs, "the plan has no name")
	}
	if len(p.Seeds) == 0 {
		errs = append(errs, "no seeds")
	}
	if len(p.Batches) == 0 {
		errs = append(errs, "no batch sizes")
	}
	for _, e := range p.Experiments {
		if !slices.Contains(allExperiments, e) {
			errs = append(errs, fmt.Sprintf("unknown experiment %q (want some of %s)", e, strings.Join(allExperiments, ", ")))
		}
	}
	for _, r := range p.LRRules {
		if _, err := engine.ParseLRRule(string(r)); err != nil || r == engine.ScaleNone {
			errs = append(errs, fmt.Sprintf("lr_rules: %q is not a scaling rule (want linear or sqrt)", r))
		}
	}
	if p.runs(LRScaling) && !(p.ScalingMargin > 0 && p.ScalingMargin < 1) {
		errs = append(errs, fmt.Sprintf("scaling_margin (how far below the base batch's accuracy a rule may fall and still keep a batch) must be in (0, 1), got %g", p.ScalingMargin))
	}
	if p.runs(Keskar) && !(p.Keskar.TrainSamples > 0 && p.Keskar.LargeFraction > 0 && p.Keskar.LargeFraction <= 1) {
		errs = append(errs, fmt.Sprintf("keskar: train_samples must be positive and large_fraction in (0, 1], got %d and %g", p.Keskar.TrainSamples, p.Keskar.LargeFraction))
	}
	if p.Grid != nil {
		switch g := p.gridPlan(""); {
		case len(p.Grid.Seeds) > 0 && !slices.Equal(p.Grid.Seeds, p.Seeds):
			errs = append(errs, fmt.Sprintf("grid: its seeds are the study's %v; leave grid.seeds out (got %v)", p.Seeds, p.Grid.Seeds))
		case p.Grid.Dataset != "":
			errs = append(errs, fmt.Sprintf("grid: its dataset is the study's (--dataset); leave grid.dataset out (got %q)", p.Grid.Dataset))
		default:
			n := g.TrainSamples
			if n == 0 {
				n = 60000 // the dataset's size is known only when it is loaded
			}
			if err := g.Validate(n); err != nil {
				errs = append(errs, "grid: "+err.Error())
			}
		}
	}
	if len(errs) == 0 {
		// The runs' own checks, against the largest training set they may
		// see (the dataset's size is known only when it is loaded).
		seen := map[string]bool{}
		for _, s := range plan(p) {
			n := max(s.TrainSamples, p.TrainSamples, s.Batch)
			if s.TrainSamples == 0 && p.TrainSamples == 0 {
				n = max(60000, s.Batch)
			}
			msg := ""
			if err := s.Config.Validate(n); err != nil {
				msg = err.Error()
			} else if err := s.Protocol.Validate(); err != nil {
				msg = err.Error()
			}
			if key := s.Experiment + "/" + s.Variant; msg != "" && !seen[key] {
				seen[key] = true
				errs = append(errs, fmt.Sprintf("%s run %s: %s", s.Experiment, s.ID, msg))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// gridPlan is the plan's grid on the study's seeds and dataset.
func (p Preset) gridPlan(dataset data.Name) grid.Plan {
	g := *p.Grid
	g.Seeds, g.Dataset = slices.Clone(p.Seeds), dataset
	return g
}

// runsGrid says whether the plan runs a grid: it has one, and runs (g).
func (p Preset) runsGrid() bool { return p.Grid != nil && p.runs(Noise) }

// runs says whether the plan runs experiment exp.
func (p Preset) runs(exp string) bool {
	return len(p.Experiments) == 0 || slices.Contains(p.Experiments, exp)
}
