// Package study answers which published findings about batch size hold on
// MNIST or Fashion-MNIST here: it plans the experiments (plan.go: presets
// and plan files), runs each under its protocol (protocol.go; study.go, each
// run saved as it finishes, so a stopped study resumes), judges each finding
// by a rule in the table of findings.go with the statistics of stats.go, and writes the report: the page model (page.go),
// its template (report.html.tmpl, embedded), the plots (figures.go, drawn
// with bench/internal/plotkit), CSV (csv.go) and NaN-safe JSON (json.go).
package study

import (
	"time"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/buildinfo"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Experiments, in the order of the report.
const (
	FixedLR   = "fixed-lr"   // (a) one LR for every batch size
	LRScaling = "lr-scaling" // (b) linear and sqrt LR scaling with warmup
	Schedule  = "schedule"   // (c) step LR decay vs increase-batch
	Regime    = "regime"     // (e) Hoffer's regimes: SB with decay, LB with ghost BN and adapted epochs
	Noise     = "noise"      // (g) gradient noise scale during a base-batch run
	Keskar    = "keskar"     // (d) SB against LB = 10 % of the data, both trained to a train accuracy
	Cost      = "cost"       // (f) wall time to a test accuracy by batch size
	// Grid is (g) measured: the plan's LR × batch grid (Preset.Grid), run
	// by bench/grid in the study's directory under gridDir; it runs with
	// experiment Noise.
	Grid = "grid"
)

// gridDir is where a study keeps its grid: plan.json, runs/, and the
// grid's own report (bench/grid.Report).
const gridDir = "grid"

// Run is one training run of the study and what it measured.
type Run struct {
	Schema     int                 `json:"schema"`     // runSchema of the build that wrote it
	ID         string              `json:"id"`         // unique; also the file name of its result
	Experiment string              `json:"experiment"` // one of the constants above
	Variant    string              `json:"variant"`    // e.g. "none", "linear+warmup", "increase-batch", "LB+GBN+RA"
	Batch      int                 `json:"batch"`      // starting batch size
	Seed       uint64              `json:"seed"`
	Device     device.Info         `json:"device"` // where it ran
	Config     engine.Config       `json:"config"` // as resolved by the trainer
	Epochs     []engine.EpochStats `json:"epochs"` // step_losses included
	Sharpness  *float64            `json:"sharpness,omitempty"`
	// HessianTop is the largest eigenvalue of the training loss's Hessian
	// at the final weights (engine.HessianTop), the second sharpness measure.
	HessianTop *float64 `json:"hessian_top,omitempty"`
	// Protocol is how long the run trained (protocol.go); Reached is where
	// it first met the protocol's target (nil: no target, or not met, the
	// run "not converged" then: see Converged).
	Protocol Protocol `json:"protocol"`
	Reached  *Reached `json:"reached,omitempty"`
	// Failed says why a run that finished counts as failed (diverged,
	// collapsed to chance, or ending above its initial loss): such a run is
	// shown as failed and never enters a mean. "" for a healthy run.
	Failed string `json:"failed,omitempty"`
	// The final model evaluated on the whole training set (the generalization
	// gap is FinalTrainAccuracy − the last epoch's TestAccuracy).
	FinalTrainLoss     *float64     `json:"final_train_loss,omitempty"`
	FinalTrainAccuracy *float64     `json:"final_train_accuracy,omitempty"`
	Noise              []NoisePoint `json:"noise,omitempty"`
	Diverged           bool         `json:"diverged"` // the loss became NaN or Inf: a result, not an error
	Error              string       `json:"error,omitempty"`
	Seconds            float64      `json:"seconds"`
	// Finished is when the run ended, so that a study's times survive a
	// copy or a clone of its directory (they reset file times); zero in
	// results saved before it was recorded.
	Finished time.Time `json:"finished,omitzero"`
}

// Final is the last epoch's stats; the zero value if the run has none.
func (r Run) Final() engine.EpochStats {
	if len(r.Epochs) == 0 {
		return engine.EpochStats{}
	}
	return r.Epochs[len(r.Epochs)-1]
}

// NoisePoint is the noise-scale estimate at one point of training.
type NoisePoint struct {
	Epoch        int     `json:"epoch"`
	Updates      int     `json:"updates"` // parameter updates so far
	GradSq       float64 `json:"grad_sq"`
	TraceSigma   float64 `json:"trace_sigma"`
	BSimple      float64 `json:"b_simple"`
	Measurements int     `json:"measurements"`
	// TrainLoss is the training loss when it was measured (the smoothed
	// loss of the steps so far), so B_simple can be read at the loss the
	// critical-batch fit targets.
	TrainLoss float64 `json:"train_loss"`
}

// Verdicts of a finding.
const (
	Reproduced    = "reproduced"
	Partly        = "partly reproduced"
	NotReproduced = "not reproduced"
	Inconclusive  = "inconclusive" // the runs it needs are missing or diverged
)

// Finding is one claim of the literature and what the study measured.
type Finding struct {
	ID       string             `json:"id"` // the rule's id, e.g. "lr-scaling"
	Claim    string             `json:"claim"`
	Source   string             `json:"source"`
	Rule     string             `json:"rule"`     // the verdict rule, in words
	Protocol string             `json:"protocol"` // how its runs were trained, in words
	Measured string             `json:"measured"` // the numbers, in words
	Verdict  string             `json:"verdict"`
	Numbers  map[string]float64 `json:"numbers"` // every number the verdict used
	// Intervals are the confidence intervals behind the verdict, by name
	// (e.g. "test_acc_gap"): every verdict states its uncertainty.
	Intervals map[string]Interval `json:"intervals"`
	// MinSeeds is the fewest seeds (paired where the rule pairs) the rule
	// needs; Seeds is how many it had. Below MinSeeds it is inconclusive.
	MinSeeds int `json:"min_seeds"`
	Seeds    int `json:"seeds"`
	// Caveats are written from the data: runs that failed or did not reach
	// their target, comparisons the rule could not make.
	Caveats []string `json:"caveats,omitempty"`
}

// Results is everything a study produced.
type Results struct {
	Preset   Preset      `json:"preset"`
	Dataset  data.Name   `json:"dataset"`
	Device   device.Info `json:"device"`
	Runs     []Run       `json:"runs"`
	Findings []Finding   `json:"findings"`
	// A partial study (some shards not finished or failed): the planned
	// runs without a result, and the claims of the findings that read them.
	Missing   []string  `json:"missing,omitempty"`
	Undecided []string  `json:"undecided,omitempty"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	// Protocols are how each experiment's runs trained (protocol.go).
	Protocols map[string]Protocol `json:"protocols"`
	// Command is the command line that ran the study (Options.Command),
	// Build the binary that judged it.
	Command []string       `json:"command,omitempty"`
	Build   buildinfo.Info `json:"build"`
	// Grid is the analysis of the plan's grid (bench/grid), from the runs
	// it has; nil when the plan has none or none has finished.
	Grid *grid.Analysis `json:"grid,omitempty"`
}

// Preset is the plan of a study: its size, seeds, batch sizes, rules and
// each experiment's settings. The built-in presets are Presets(); a plan
// file (ReadPlan) gives the same fields, and the preset.json a study writes
// into its directory is such a file.
type Preset struct {
	Name         string   `json:"name"`
	TrainSamples int      `json:"train_samples"` // 0: all
	TestSamples  int      `json:"test_samples"`  // 0: all
	Hidden       []int    `json:"hidden"`
	Model        string   `json:"model,omitempty"` // a CNN's spec (engine.Config.Model); "": the MLP of Hidden
	Epochs       int      `json:"epochs"`          // of the fixed-LR and scaling sweeps (equal epochs)
	Seeds        []uint64 `json:"seeds"`
	Batches      []int    `json:"batches"`    // the sweep
	BaseBatch    int      `json:"base_batch"` // B₀, the small batch
	BaseLR       float64  `json:"base_lr"`    // η₀ at B₀
	Momentum     float64  `json:"momentum"`
	// Experiments lists the experiments to run, in the report's order
	// (FixedLR, LRScaling, ...); empty: all of them.
	Experiments []string `json:"experiments,omitempty"`
	// (b) the rules swept, and Goyal et al.'s recipe around them: warmup
	// over WarmupEpochs (Goyal: 5 of 90 epochs), step decay by
	// ScalingDecayFactor after ScalingDecayEpochs (Goyal: ×0.1 after 30,
	// 60, 80); a rule "keeps" a batch whose accuracy stays within
	// ScalingMargin of the base batch's.
	LRRules            []engine.LRRule `json:"lr_rules"`
	WarmupEpochs       float64         `json:"warmup_epochs"`
	ScalingDecayEpochs []int           `json:"scaling_decay_epochs,omitempty"`
	ScalingDecayFactor float64         `json:"scaling_decay_factor,omitempty"`
	ScalingMargin      float64         `json:"scaling_margin"`
	// (c): epochs, decay points and factor of the step schedule.
	ScheduleEpochs int     `json:"schedule_epochs"`
	DecayEpochs    []int   `json:"decay_epochs"`
	DecayFactor    float64 `json:"decay_factor"`
	// (e) Hoffer et al.'s regimes: RegimeEpochs with step decay after
	// RegimeDecayEpochs (by DecayFactor) and weight decay; the large batch
	// and the ghost batch.
	RegimeEpochs      int     `json:"regime_epochs"`
	RegimeDecayEpochs []int   `json:"regime_decay_epochs,omitempty"`
	WeightDecay       float64 `json:"weight_decay"`
	LargeBatch        int     `json:"large_batch"`
	GhostBatch        int     `json:"ghost_batch"`
	// (d) Keskar et al.'s experiment, and the sharpness measures.
	Keskar    KeskarPlan             `json:"keskar"`
	Sharpness engine.SharpnessConfig `json:"sharpness"`
	Hessian   engine.HessianConfig   `json:"hessian"`
	// (f) time to a test accuracy by batch size.
	Cost CostPlan `json:"cost"`
	// (g): noise-scale batches and measurements.
	NoiseSmall   int `json:"noise_small"`
	NoiseBig     int `json:"noise_big"`
	NoiseSamples int `json:"noise_samples"` // measurements per point
	// Grid, when given, measures (g)'s critical batch with bench/grid: an
	// LR × batch grid trained to loss targets, B_crit fitted per target
	// and the noise scale held to it there. Its seeds and dataset are the
	// study's (leave seeds and dataset out); nil: (g) is estimated from
	// the sweeps as before.
	Grid *grid.Plan `json:"grid,omitempty"`
}

// KeskarPlan is Keskar et al.'s comparison: a small batch against a large
// one of LargeFraction of the training set (they used 256 and 10 %), with
// Adam, both trained until the training accuracy reaches Target or
// MaxEpochs pass, on the first TrainSamples training samples (0: all).
type KeskarPlan struct {
	TrainSamples  int     `json:"train_samples"`
	Hidden        []int   `json:"hidden"`
	SmallBatch    int     `json:"small_batch"`
	LargeFraction float64 `json:"large_fraction"`
	LR            float64 `json:"lr"` // Adam's, at both batches (Keskar et al. do not scale it)
	Target        float64 `json:"target"`
	MaxEpochs     int     `json:"max_epochs"`
}

// CostPlan is the time-to-accuracy experiment: at each of Batches (empty:
// the sweep's) under LR rule Rule (from BaseBatch, with WarmupEpochs), the
// wall time of the training passes until the test accuracy first reaches
// Target, checked at each epoch's end, MaxEpochs at most.
type CostPlan struct {
	Batches   []int         `json:"batches,omitempty"`
	Rule      engine.LRRule `json:"rule"`
	Target    float64       `json:"target"`
	MaxEpochs int           `json:"max_epochs"`
}
