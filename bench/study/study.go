package study

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/atomicfile"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Presets are the sizes of the study: "quick" runs in a few minutes on a
// 2-core CPU; "full" uses all of MNIST and three seeds; "tiny" is seconds.
func Presets() map[string]Preset {
	quick := Preset{
		Name: "quick", TrainSamples: 20000, TestSamples: 5000, Hidden: []int{256},
		Epochs: 3, Seeds: []uint64{1, 2}, Batches: []int{64, 256, 1024, 4096},
		BaseBatch: 64, BaseLR: 0.05, Momentum: 0.9, WarmupEpochs: 1,
		ScheduleEpochs: 6, DecayEpochs: []int{2, 4}, DecayFactor: 0.2,
		LargeBatch: 1024, GhostBatch: 64,
		Sharpness:  engine.SharpnessConfig{Epsilon: 1e-3, Samples: 1024, Steps: 5, Seed: 1},
		NoiseSmall: 64, NoiseBig: 1024, NoiseSamples: 4,
	}
	full := quick
	full.Name, full.TrainSamples, full.TestSamples = "full", 0, 0
	full.Hidden = []int{256, 256}
	full.Epochs, full.Seeds = 5, []uint64{1, 2, 3}
	full.ScheduleEpochs, full.DecayEpochs = 9, []int{3, 6}
	full.Sharpness = engine.DefaultSharpness()
	full.NoiseSamples = 10
	// tiny runs in seconds on testdata/mnist-subset: it tests the machinery
	// (sharding, a scheduler's array), and its findings mean little.
	tiny := quick
	tiny.Name, tiny.TrainSamples, tiny.TestSamples = "tiny", 1000, 200
	tiny.Hidden, tiny.Epochs, tiny.Seeds = []int{16}, 1, []uint64{1}
	tiny.Batches, tiny.BaseBatch, tiny.LargeBatch, tiny.GhostBatch = []int{16, 64, 256}, 16, 128, 16
	tiny.ScheduleEpochs, tiny.DecayEpochs = 2, []int{1}
	tiny.Sharpness = engine.SharpnessConfig{Epsilon: 1e-3, Samples: 200, Steps: 2, Seed: 1}
	tiny.NoiseSmall, tiny.NoiseBig, tiny.NoiseSamples = 16, 128, 2
	return map[string]Preset{"quick": quick, "full": full, "tiny": tiny}
}

// WithModel returns p training the model spec names (engine.ParseModel)
// instead of its own.
func (p Preset) WithModel(spec string) (Preset, error) {
	cfg, err := engine.Config{}.WithModel(spec)
	p.Model, p.Hidden = cfg.Model, cfg.Hidden
	return p, err
}

// modelName says what p trains, for the report.
func (p Preset) modelName() string {
	if p.Model != "" {
		return p.Model
	}
	return "MLP, hidden layers " + joinInts(p.Hidden, "–")
}

// runSpec is one planned run.
type runSpec struct {
	ID         string
	Experiment string
	Variant    string
	Batch      int
	Seed       uint64
	Config     engine.Config
	Sharpness  bool // measure sharpness at the end
	Noise      bool // measure the noise scale during training
}

// plan lists every run of a preset, experiment by experiment.
func plan(p Preset) []runSpec {
	base := engine.Config{
		Model: p.Model, Hidden: p.Hidden, LR: p.BaseLR, Momentum: p.Momentum, Epochs: p.Epochs,
		EvalBatch: 1000, BaseBatch: p.BaseBatch, LRScale: engine.ScaleNone,
	}
	var specs []runSpec
	add := func(exp, variant string, batch int, seed uint64, cfg engine.Config, sharp, noise bool) {
		cfg.Batch, cfg.Seed = batch, seed
		id := fmt.Sprintf("%s_%s_b%d_s%d", exp, variant, batch, seed)
		specs = append(specs, runSpec{id, exp, variant, batch, seed, cfg, sharp, noise})
	}
	for _, seed := range p.Seeds {
		for _, b := range p.Batches { // (a) and (d), (f): fixed LR
			add(FixedLR, "none", b, seed, base, true, false)
		}
		for _, rule := range []engine.LRRule{engine.ScaleLinear, engine.ScaleSqrt} { // (b)
			for _, b := range p.Batches {
				cfg := base
				cfg.LRScale, cfg.WarmupEpochs = rule, p.WarmupEpochs
				add(LRScaling, string(rule), b, seed, cfg, false, false)
			}
		}
		sched := base // (c): the same decay points, as LR decay or as batch growth
		sched.Epochs, sched.DecayEpochs, sched.DecayFactor = p.ScheduleEpochs, p.DecayEpochs, p.DecayFactor
		add(Schedule, "step-decay", p.BaseBatch, seed, sched, false, false)
		sched.IncreaseBatch, sched.MaxBatch = true, p.BaseBatch*int(pow(1/p.DecayFactor, len(p.DecayEpochs)))
		add(Schedule, "increase-batch", p.BaseBatch, seed, sched, false, false)
		// (e): small batch, large batch, + ghost BN, + regime adaptation,
		// all with batch norm and the large ones with sqrt scaling (Hoffer et al.).
		reg := base
		reg.BatchNorm = true
		add(Regime, "SB", p.BaseBatch, seed, reg, false, false)
		reg.LRScale = engine.ScaleSqrt
		add(Regime, "LB", p.LargeBatch, seed, reg, false, false)
		reg.GhostBatch = p.GhostBatch
		add(Regime, "LB+GBN", p.LargeBatch, seed, reg, false, false)
		reg.AdaptRegime = true
		add(Regime, "LB+GBN+RA", p.LargeBatch, seed, reg, false, false)
	}
	add(Noise, "base", p.BaseBatch, p.Seeds[0], base, false, true) // (g)
	return specs
}

func pow(x float64, n int) float64 {
	r := 1.0
	for range n {
		r *= x
	}
	return r
}

// Options say where and how a study runs.
type Options struct {
	Dir     string    // results: runs/<id>.json, then the report
	Device  string    // as device.Open takes it
	Dataset data.Name // "" is MNIST
	DataDir string
	Log     io.Writer
	// Shard limits this process to a share of the runs; other processes
	// (other shards, or the same command started twice) share Dir safely
	// through claims (claim.go), taken over after ClaimTimeout without a
	// heartbeat (DefaultClaimTimeout when 0).
	Shard        Shard
	ClaimTimeout time.Duration
}

// Execute runs every planned run of its shard that has no result in
// opts.Dir yet and that no live process has claimed, saving each as it
// finishes, so a killed study continues where it stopped. Then, if every
// run of the plan has a result (this process was the last to finish), it
// judges the findings and writes the report; otherwise the Results it
// returns list the runs still missing and no report is written.
func Execute(ctx context.Context, p Preset, opts Options) (*Results, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.Dataset == "" {
		opts.Dataset = data.MNIST
	}
	train, test, err := opts.Dataset.Load(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if p.TrainSamples > 0 {
		train = train.Subset(p.TrainSamples)
	}
	if p.TestSamples > 0 {
		test = test.Subset(p.TestSamples)
	}
	runDir := filepath.Join(opts.Dir, "runs")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	if err := checkPreset(opts.Dir, p); err != nil {
		return nil, err
	}
	if err := checkDataset(opts.Dir, opts.Dataset); err != nil {
		return nil, err
	}
	claims, err := newClaimer(runDir, opts.ClaimTimeout)
	if err != nil {
		return nil, err
	}
	specs := plan(p)
	mine := opts.Shard.pick(specs)
	for i, spec := range specs {
		if !mine[i] {
			continue
		}
		path := filepath.Join(runDir, spec.ID+".json")
		if _, err := loadRun(path, spec); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(log, "run %s: %v: running it again\n", spec.ID, err)
		}
		cl, holder, err := claims.take(spec.ID)
		if err != nil {
			return nil, err
		}
		if cl == nil {
			fmt.Fprintf(log, "run %s: left to %s\n", spec.ID, holder)
			continue
		}
		// Its holder may have finished it between our look and our claim.
		if _, err := loadRun(path, spec); err == nil {
			cl.release()
			continue
		}
		fmt.Fprintf(log, "[%d/%d] %s\n", i+1, len(specs), spec.ID)
		err = runAndSave(ctx, spec, p, opts.Device, train, test, path)
		cl.release() // after the result is saved, or on failure: nothing half-done is saved
		if err != nil {
			return nil, err
		}
	}
	res, err := collect(opts.Dir, p)
	if err != nil || len(res.Missing) > 0 {
		return res, err
	}
	return res, writeReport(opts.Dir, res)
}

// runAndSave runs spec and saves its result at path, atomically.
func runAndSave(ctx context.Context, spec runSpec, p Preset, deviceName string, train, test *data.Dataset, path string) error {
	run, err := execute(ctx, spec, p, deviceName, train, test)
	if err != nil {
		return err // interrupted or broken
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return writeJSON(w, run) }); err != nil {
		return fmt.Errorf("saving run %s: %w", spec.ID, err)
	}
	return nil
}

// Report builds the report of the study in dir from whatever runs it holds
// (every shard's, or some): the report lists the missing runs and the
// findings they leave undecided.
func Report(dir string) (*Results, error) {
	path := filepath.Join(dir, "preset.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a study directory: it has no preset.json", dir)
	} else if err != nil {
		return nil, err
	}
	var p Preset
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(p.Seeds) == 0 || len(p.Batches) == 0 {
		return nil, fmt.Errorf("%s: not a study preset (no seeds or batch sizes)", path)
	}
	res, err := collect(dir, p)
	if err != nil {
		return nil, err
	}
	return res, writeReport(dir, res)
}

// collect reads the results of p's runs in dir, in the order of the plan,
// and judges the findings. A run without a valid result is missing; the
// findings reading its experiment are undecided. The study started when
// its directory was first used (preset.json).
func collect(dir string, p Preset) (*Results, error) {
	res := &Results{Preset: p, Dataset: studyDataset(dir), Finished: time.Now()}
	if fi, err := os.Stat(filepath.Join(dir, "preset.json")); err == nil {
		res.Started = fi.ModTime()
	}
	missingExp := map[string]bool{}
	for _, spec := range plan(p) {
		run, err := loadRun(filepath.Join(dir, "runs", spec.ID+".json"), spec)
		if err != nil {
			res.Missing = append(res.Missing, spec.ID)
			missingExp[spec.Experiment] = true
			continue
		}
		if res.Device.Kind == "" {
			res.Device = run.Device
		}
		res.Runs = append(res.Runs, run)
	}
	res.Findings = judge(res)
	for _, rl := range rules {
		if slices.ContainsFunc(rl.experiments, func(e string) bool { return missingExp[e] }) {
			res.Undecided = append(res.Undecided, rl.claim)
		}
	}
	return res, nil
}

// checkPreset refuses to mix runs of different presets in one directory:
// it records the preset on first use and compares later.
func checkPreset(dir string, p Preset) error {
	path := filepath.Join(dir, "preset.json")
	if old, err := os.ReadFile(path); err == nil {
		var prev Preset
		if err := json.Unmarshal(old, &prev); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		a, _ := json.Marshal(prev)
		b, _ := json.Marshal(p)
		if string(a) != string(b) {
			return fmt.Errorf("%s holds a study with preset %q and other settings; use another --out directory", dir, prev.Name)
		}
		return nil
	}
	return atomicfile.Write(path, func(w io.Writer) error { return writeJSON(w, p) })
}

// checkDataset refuses to mix runs on different datasets in one directory,
// as checkPreset does presets. A directory without the record is a study
// of a build that knew only MNIST.
func checkDataset(dir string, name data.Name) error {
	path := filepath.Join(dir, "dataset")
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if runs, _ := os.ReadDir(filepath.Join(dir, "runs")); len(runs) > 0 && name != data.MNIST {
			return fmt.Errorf("%s holds a study on mnist, not %s; use another --out directory", dir, name)
		}
	case err == nil:
		if prev := data.Name(strings.TrimSpace(string(old))); prev != name {
			return fmt.Errorf("%s holds a study on %s, not %s; use another --out directory", dir, prev, name)
		}
		return nil
	default:
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, string(name)+"\n")
		return err
	})
}

// studyDataset is the dataset checkDataset recorded in dir: MNIST where
// there is no record (a study of a build that knew only MNIST).
func studyDataset(dir string) data.Name {
	b, err := os.ReadFile(filepath.Join(dir, "dataset"))
	if err != nil {
		return data.MNIST
	}
	return data.Name(strings.TrimSpace(string(b)))
}

// writeJSON writes v as JSON, NaN and ±Inf (a diverged loss, a noise
// scale not yet estimable) as null, which encoding/json refuses.
func writeJSON(w io.Writer, v any) error {
	b, err := marshalFinite(v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// loadRun reads the result of spec saved at path, and refuses a file that
// is not one: anything that parses (null, another run's result copied under
// this name, a file of an older layout) would otherwise be counted.
func loadRun(path string, spec runSpec) (Run, error) {
	var run Run
	b, err := os.ReadFile(path)
	if err != nil {
		return run, err
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return run, fmt.Errorf("unreadable result: %w", err)
	}
	if err := run.isResultOf(spec); err != nil {
		return run, fmt.Errorf("not a result of this run: %w", err)
	}
	return run, nil
}

// runSchema is the version of a run file's layout; a file of another
// version is run again.
const runSchema = 1

// isResultOf checks a loaded run against its spec: schema, identity and
// settings, and the fields a finished run has.
func (r Run) isResultOf(spec runSpec) error {
	switch {
	case r.Schema != runSchema:
		return fmt.Errorf("schema %d, want %d", r.Schema, runSchema)
	case r.ID != spec.ID:
		return fmt.Errorf("its id is %q", r.ID)
	case r.Experiment != spec.Experiment || r.Variant != spec.Variant || r.Batch != spec.Batch || r.Seed != spec.Seed:
		return fmt.Errorf("it is %s/%s at batch %d, seed %d", r.Experiment, r.Variant, r.Batch, r.Seed)
	}
	got, _ := json.Marshal(r.Config)
	planned, _ := json.Marshal(spec.Config)
	resolved, _ := json.Marshal(spec.Config.Resolved()) // what the trainer records
	if string(got) != string(resolved) && string(got) != string(planned) {
		return fmt.Errorf("its settings %s are not the planned %s", got, resolved)
	}
	if r.Error != "" { // a run that failed or diverged is a result too
		return nil
	}
	epochs := spec.Config.Resolved().Epochs
	switch {
	case len(r.Epochs) != epochs:
		return fmt.Errorf("%d epochs, want %d", len(r.Epochs), epochs)
	case r.FinalTrainLoss == nil || r.FinalTrainAccuracy == nil:
		return errors.New("no final train loss and accuracy")
	case spec.Sharpness && r.Sharpness == nil:
		return errors.New("no sharpness")
	case spec.Noise && len(r.Noise) == 0:
		return errors.New("no noise-scale estimates")
	}
	for i, e := range r.Epochs {
		if e.Epoch != i+1 || e.Updates <= 0 || len(e.StepLosses) != e.Updates {
			return fmt.Errorf("epoch %d of %d is incomplete", i+1, epochs)
		}
	}
	return nil
}

// execute trains one run on a fresh device. Divergence and device errors
// are results of the run; only cancellation is an error of the study.
func execute(ctx context.Context, spec runSpec, p Preset, deviceName string, train, test *data.Dataset) (run Run, err error) {
	run = Run{Schema: runSchema, ID: spec.ID, Experiment: spec.Experiment, Variant: spec.Variant, Batch: spec.Batch, Seed: spec.Seed, Config: spec.Config}
	d, err := device.Open(deviceName)
	if err != nil {
		return run, err
	}
	defer d.Close()
	run.Device = d.Info()
	start := time.Now()
	defer func() { run.Seconds = time.Since(start).Seconds() }() // named results: it lands
	tr, err := engine.NewTrainer(d, spec.Config, train, test)
	if err != nil {
		run.Error = err.Error()
		return run, nil
	}
	run.Config = tr.Config()
	var hooks engine.Hooks
	var meter *engine.NoiseMeter
	var measureErr error
	if spec.Noise {
		if meter, err = engine.NewNoiseMeter(tr, p.NoiseSmall, p.NoiseBig, spec.Seed); err != nil {
			run.Error = err.Error()
			return run, nil
		}
		defer meter.Close()
		measure := func(epoch int) {
			if measureErr != nil {
				return
			}
			var e engine.NoiseEstimate
			if e, measureErr = meter.Sample(p.NoiseSamples); measureErr != nil {
				return
			}
			run.Noise = append(run.Noise, NoisePoint{Epoch: epoch, Updates: tr.TotalUpdates(), GradSq: e.GradSq(),
				TraceSigma: e.TraceSigma(), BSimple: e.BSimple(), Measurements: e.Count()})
		}
		// Early in training the noise scale moves fast: measure at a
		// quarter and a half of the first epoch, then after every epoch.
		hooks.Step = func(epoch, done, total int) {
			if epoch == 1 && (done == total/4 || done == total/2) {
				measure(epoch)
			}
		}
		hooks.Epoch = func(s engine.EpochStats) { measure(s.Epoch) }
	}
	run.Epochs, err = tr.Run(ctx, hooks)
	switch {
	case ctx.Err() != nil:
		return run, ctx.Err()
	case errors.Is(err, engine.ErrDiverged):
		run.Diverged = true
		run.Error = err.Error()
	case err != nil:
		run.Error = err.Error()
	case measureErr != nil:
		run.Error = measureErr.Error()
	default:
		if err := finalMeasures(&run, tr, train, spec, p); err != nil {
			run.Error = err.Error()
		}
	}
	return run, nil
}

// finalMeasures evaluates the trained model on the whole training set (the
// train accuracy of an epoch is a running mean over changing weights; the
// generalization gap needs the final model's) and measures sharpness.
func finalMeasures(run *Run, tr *engine.Trainer, train *data.Dataset, spec runSpec, p Preset) error {
	loss, acc, err := tr.Evaluate(train)
	if err != nil {
		return err
	}
	run.FinalTrainLoss, run.FinalTrainAccuracy = &loss, &acc
	if spec.Sharpness {
		phi, err := engine.Sharpness(tr, p.Sharpness)
		if err != nil {
			return err
		}
		run.Sharpness = &phi
	}
	return nil
}

// batchesOf lists the distinct starting batch sizes of runs, ascending.
func batchesOf(runs []Run) []int {
	var bs []int
	for _, r := range runs {
		if !slices.Contains(bs, r.Batch) {
			bs = append(bs, r.Batch)
		}
	}
	sort.Ints(bs)
	return bs
}
