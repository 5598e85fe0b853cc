// Package study answers which published findings about batch size hold on
// MNIST here: it plans and runs the experiments (study.go, each run saved as
// it finishes, so a stopped study resumes), judges each finding by a rule in
// the table of findings.go, and writes the report: the page model (page.go),
// its template (report.html.tmpl, embedded), the plots (figures.go, drawn
// with bench/internal/plotkit), CSV (csv.go) and NaN-safe JSON (json.go).
package study

import (
	"time"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Experiments, in the order of the report.
const (
	FixedLR   = "fixed-lr"   // (a) one LR for every batch size
	LRScaling = "lr-scaling" // (b) linear and sqrt LR scaling with warmup
	Schedule  = "schedule"   // (c) step LR decay vs increase-batch
	Regime    = "regime"     // (e) large batch with ghost BN and regime adaptation
	Noise     = "noise"      // (g) gradient noise scale during a base-batch run
)

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
	// The final model evaluated on the whole training set (the generalization
	// gap is FinalTrainAccuracy − the last epoch's TestAccuracy).
	FinalTrainLoss     *float64     `json:"final_train_loss,omitempty"`
	FinalTrainAccuracy *float64     `json:"final_train_accuracy,omitempty"`
	Noise              []NoisePoint `json:"noise,omitempty"`
	Diverged           bool         `json:"diverged"` // the loss became NaN or Inf: a result, not an error
	Error              string       `json:"error,omitempty"`
	Seconds            float64      `json:"seconds"`
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
	Claim    string             `json:"claim"`
	Source   string             `json:"source"`
	Measured string             `json:"measured"` // the numbers, in words
	Verdict  string             `json:"verdict"`
	Numbers  map[string]float64 `json:"numbers"` // every number the verdict used
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
}

// Preset is the size of a study.
type Preset struct {
	Name         string   `json:"name"`
	TrainSamples int      `json:"train_samples"` // 0: all
	TestSamples  int      `json:"test_samples"`  // 0: all
	Hidden       []int    `json:"hidden"`
	Model        string   `json:"model,omitempty"` // a CNN's spec (engine.Config.Model); "": the MLP of Hidden
	Epochs       int      `json:"epochs"`          // of the fixed-LR and scaling sweeps
	Seeds        []uint64 `json:"seeds"`
	Batches      []int    `json:"batches"`    // the sweep
	BaseBatch    int      `json:"base_batch"` // B₀, the small batch
	BaseLR       float64  `json:"base_lr"`    // η₀ at B₀
	Momentum     float64  `json:"momentum"`
	WarmupEpochs float64  `json:"warmup_epochs"`
	// (c): epochs, decay points and factor of the step schedule.
	ScheduleEpochs int     `json:"schedule_epochs"`
	DecayEpochs    []int   `json:"decay_epochs"`
	DecayFactor    float64 `json:"decay_factor"`
	// (e): the large batch and the ghost batch.
	LargeBatch int `json:"large_batch"`
	GhostBatch int `json:"ghost_batch"`
	// (d): sharpness settings; (g): noise-scale batches and measurements.
	Sharpness    engine.SharpnessConfig `json:"sharpness"`
	NoiseSmall   int                    `json:"noise_small"`
	NoiseBig     int                    `json:"noise_big"`
	NoiseSamples int                    `json:"noise_samples"` // measurements per point
}
