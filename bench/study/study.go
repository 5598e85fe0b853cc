package study

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
	"sort"
	"strings"
	"time"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/atomicfile"
	"github.com/batchlab/batchlab/engine/buildinfo"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

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
	ID           string
	Experiment   string
	Variant      string
	Batch        int
	Seed         uint64
	Config       engine.Config
	Protocol     Protocol
	TrainSamples int  // the first this many training samples; 0: the study's training set
	Sharpness    bool // measure the sharpness (both measures) at the end
	Noise        bool // measure the noise scale during training
}

// config is one configuration of an experiment, run once per seed.
type config struct {
	variant      string
	batch        int
	cfg          engine.Config
	protocol     Protocol
	trainSamples int
	sharp, noise bool
}

// plan lists every run of a preset, experiment by experiment. Within an
// experiment the seeds are interleaved across its configurations: each
// seed runs every configuration, in reverse order on every other seed, so
// that a slow spell of a shared machine falls on all configurations alike
// and the runs a paired comparison sets side by side run close in time.
func plan(p Preset) []runSpec {
	var specs []runSpec
	for _, exp := range allExperiments {
		if !p.runs(exp) {
			continue
		}
		configs := p.configs(exp)
		for k, seed := range p.Seeds {
			order := slices.Clone(configs)
			if k%2 == 1 {
				slices.Reverse(order)
			}
			for _, c := range order {
				cfg := c.cfg
				cfg.Batch, cfg.Seed = c.batch, seed
				specs = append(specs, runSpec{
					ID: fmt.Sprintf("%s_%s_b%d_s%d", exp, c.variant, c.batch, seed), Experiment: exp, Variant: c.variant,
					Batch: c.batch, Seed: seed, Config: cfg, Protocol: c.protocol, TrainSamples: c.trainSamples,
					Sharpness: c.sharp, Noise: c.noise,
				})
			}
		}
	}
	return specs
}

// configs are the configurations of one experiment, with the protocol of each.
func (p Preset) configs(exp string) []config {
	base := engine.Config{
		Model: p.Model, Hidden: p.Hidden, LR: p.BaseLR, Momentum: p.Momentum, Epochs: p.Epochs,
		EvalBatch: 1000, BaseBatch: p.BaseBatch, LRScale: engine.ScaleNone,
	}
	epochs := Protocol{Kind: EqualEpochs, Epochs: p.Epochs}
	var cs []config
	switch exp {
	case FixedLR: // (a), and the reference of (b)
		for _, b := range p.Batches {
			cs = append(cs, config{variant: "none", batch: b, cfg: base, protocol: epochs})
		}
	case LRScaling: // (b) with Goyal et al.'s warmup and step decay
		for _, rule := range p.LRRules {
			for _, b := range p.Batches {
				cfg := base
				cfg.LRScale, cfg.WarmupEpochs = rule, p.WarmupEpochs
				cfg.DecayEpochs, cfg.DecayFactor = p.ScalingDecayEpochs, p.ScalingDecayFactor
				cs = append(cs, config{variant: string(rule), batch: b, cfg: cfg, protocol: epochs})
			}
		}
	case Schedule: // (c): the same decay points as LR decay, as batch growth, and neither
		sched := base
		sched.Epochs = p.ScheduleEpochs
		pr := Protocol{Kind: EqualEpochs, Epochs: p.ScheduleEpochs}
		cs = append(cs, config{variant: "constant", batch: p.BaseBatch, cfg: sched, protocol: pr})
		sched.DecayEpochs, sched.DecayFactor = p.DecayEpochs, p.DecayFactor
		cs = append(cs, config{variant: "step-decay", batch: p.BaseBatch, cfg: sched, protocol: pr})
		sched.IncreaseBatch, sched.MaxBatch = true, p.BaseBatch*int(pow(1/p.DecayFactor, len(p.DecayEpochs)))
		cs = append(cs, config{variant: "increase-batch", batch: p.BaseBatch, cfg: sched, protocol: pr})
	case Regime:
		// (e) Hoffer et al.: the small batch's regime (step decay, weight
		// decay, batch norm); the large batch at equal epochs with sqrt
		// scaling, then with ghost batch norm, then with as many updates
		// as the small batch, its decay points at the same updates.
		reg := base
		reg.Epochs, reg.BatchNorm, reg.WeightDecay = p.RegimeEpochs, true, p.WeightDecay
		reg.DecayEpochs, reg.DecayFactor = p.RegimeDecayEpochs, p.DecayFactor
		pr := Protocol{Kind: EqualEpochs, Epochs: p.RegimeEpochs}
		cs = append(cs, config{variant: "SB", batch: p.BaseBatch, cfg: reg, protocol: pr})
		reg.LRScale = engine.ScaleSqrt
		cs = append(cs, config{variant: "LB", batch: p.LargeBatch, cfg: reg, protocol: pr})
		reg.GhostBatch = p.GhostBatch
		cs = append(cs, config{variant: "LB+GBN", batch: p.LargeBatch, cfg: reg, protocol: pr})
		reg.AdaptRegime = true
		cs = append(cs, config{variant: "LB+GBN+RA", batch: p.LargeBatch, cfg: reg,
			protocol: Protocol{Kind: EqualUpdates, Epochs: p.RegimeEpochs, BaseBatch: p.BaseBatch}})
	case Keskar:
		// (d) Keskar et al.: Adam, the same LR at both batches, trained
		// until the training accuracy reaches the target.
		k := p.Keskar
		cfg := engine.Config{Hidden: k.Hidden, LR: k.LR, Optimizer: engine.Adam, Beta1: engine.DefaultBeta1,
			Beta2: engine.DefaultBeta2, Eps: engine.DefaultEps, Epochs: k.MaxEpochs, EvalBatch: 1000, LRScale: engine.ScaleNone}
		pr := Protocol{Kind: TrainToTarget, Epochs: k.MaxEpochs, Metric: TrainAccuracy, Target: k.Target}
		large := int(math.Round(k.LargeFraction * float64(k.TrainSamples)))
		for _, v := range []struct {
			name  string
			batch int
		}{{"SB", k.SmallBatch}, {"LB", large}} {
			c := cfg
			c.BaseBatch = v.batch
			cs = append(cs, config{variant: v.name, batch: v.batch, cfg: c, protocol: pr, trainSamples: k.TrainSamples, sharp: true})
		}
	case Cost: // (f): time to a test accuracy
		cfg := base
		cfg.Epochs, cfg.LRScale, cfg.WarmupEpochs = p.Cost.MaxEpochs, p.Cost.Rule, p.WarmupEpochs
		pr := Protocol{Kind: TimeToAccuracy, Epochs: p.Cost.MaxEpochs, Metric: TestAccuracy, Target: p.Cost.Target}
		for _, b := range p.costBatches() {
			cs = append(cs, config{variant: string(p.Cost.Rule), batch: b, cfg: cfg, protocol: pr})
		}
	case Noise: // (g)
		cs = append(cs, config{variant: "base", batch: p.BaseBatch, cfg: base, protocol: epochs, noise: true})
	}
	return cs
}

// costBatches are the batch sizes of the cost experiment.
func (p Preset) costBatches() []int {
	if len(p.Cost.Batches) > 0 {
		return p.Cost.Batches
	}
	return p.Batches
}

// protocols is the protocol of each experiment the plan runs (the regime's
// adapted large batch trains to equal updates, the rest of it to equal epochs).
func (p Preset) protocols() map[string]Protocol {
	out := map[string]Protocol{}
	for _, exp := range allExperiments {
		if cs := p.configs(exp); p.runs(exp) && len(cs) > 0 {
			out[exp] = cs[0].protocol
		}
	}
	return out
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
	// through claims (bench/internal/runstore), taken over after ClaimTimeout without a
	// heartbeat (DefaultClaimTimeout when 0).
	Shard        Shard
	ClaimTimeout time.Duration
	// Command is the command line that ran the study, for the report.
	Command []string
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
	if k := p.Keskar.TrainSamples; p.runs(Keskar) && k > train.Len() {
		return nil, fmt.Errorf("the plan's keskar experiment takes %d training samples, and the training set has %d", k, train.Len())
	}
	runDir := filepath.Join(opts.Dir, "runs")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("study plan %q: %w", p.Name, err)
	}
	if err := checkPreset(opts.Dir, p); err != nil {
		return nil, err
	}
	if err := checkDataset(opts.Dir, opts.Dataset); err != nil {
		return nil, err
	}
	if err := recordCommand(opts.Dir, opts.Command); err != nil {
		return nil, err
	}
	claims, err := runstore.NewClaimer(runDir, opts.ClaimTimeout)
	if err != nil {
		return nil, err
	}
	specs := plan(p)
	ids := make([]string, len(specs))
	for i, spec := range specs {
		ids[i] = spec.ID
	}
	jobs := runstore.Jobs(runDir, ids, pick(opts.Shard, specs),
		func(i int, path string) error { _, err := loadRun(path, specs[i]); return err },
		func(i int, path string) error {
			fmt.Fprintf(log, "[%d/%d] %s\n", i+1, len(specs), specs[i].ID)
			return runAndSave(ctx, specs[i], p, opts.Device, train, test, path)
		})
	if err := claims.RunEach(jobs, log); err != nil {
		return nil, err
	}
	if p.runsGrid() {
		// The grid's runs, after the study's: resumable, claimed and
		// sharded as they are (bench/grid shares bench/internal/runstore).
		if _, err := grid.Execute(ctx, p.gridPlan(opts.Dataset), grid.Options{Dir: filepath.Join(opts.Dir, gridDir), Device: opts.Device,
			DataDir: opts.DataDir, Log: log, Shard: opts.Shard, ClaimTimeout: opts.ClaimTimeout}); err != nil {
			return nil, fmt.Errorf("grid: %w", err)
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
	if err := runstore.Save(path, run, marshalFinite); err != nil {
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

// runTimes is when run started and ended, from what it recorded. A result
// saved before runs recorded their end gives the time its file was written
// and no start (the study's start is then preset.json's time): file times
// that a copy or a clone resets.
func runTimes(run Run, path string) (start, end time.Time) {
	if !run.Finished.IsZero() {
		return run.Finished.Add(-time.Duration(run.Seconds * float64(time.Second))), run.Finished
	}
	if fi, err := os.Stat(path); err == nil {
		end = fi.ModTime()
	}
	return time.Time{}, end
}

// collect reads the results of p's runs in dir, in the order of the plan,
// and judges the findings. A run without a valid result is missing; the
// findings reading its experiment are undecided. The study started when
// its first run did and finished when its last run did, not when it is
// reported (study report reads old runs); see runTimes.
func collect(dir string, p Preset) (*Results, error) {
	res := &Results{Preset: p, Dataset: studyDataset(dir), Protocols: p.protocols(), Build: buildinfo.Read()}
	if b, err := os.ReadFile(filepath.Join(dir, commandFile)); err == nil {
		if err := json.Unmarshal(b, &res.Command); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, commandFile), err)
		}
	}
	missingExp := map[string]bool{}
	for _, spec := range plan(p) {
		path := runstore.ResultPath(filepath.Join(dir, "runs"), spec.ID)
		run, err := loadRun(path, spec)
		if err != nil {
			res.Missing = append(res.Missing, spec.ID)
			missingExp[spec.Experiment] = true
			continue
		}
		start, end := runTimes(run, path)
		if !start.IsZero() && (res.Started.IsZero() || start.Before(res.Started)) {
			res.Started = start
		}
		if end.After(res.Finished) {
			res.Finished = end
		}
		if res.Device.Kind == "" {
			res.Device = run.Device
		}
		res.Runs = append(res.Runs, run)
	}
	if fi, err := os.Stat(filepath.Join(dir, "preset.json")); err == nil && res.Started.IsZero() {
		res.Started = fi.ModTime()
	}
	if p.runsGrid() {
		// The grid's missing runs are the study's too (named grid/<id>):
		// the noise-scale finding reads them.
		gdir := filepath.Join(dir, gridDir)
		gp := p.gridPlan(res.Dataset)
		runs, missing := grid.ReadRuns(gdir, gp)
		for _, id := range missing {
			res.Missing = append(res.Missing, gridDir+"/"+id)
			missingExp[Grid] = true
		}
		if len(runs) > 0 {
			res.Grid = grid.Analyze(gp, runs, missing)
		}
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
	return runstore.Save(path, p, marshalFinite)
}

// commandFile holds the command line that started the study in its
// directory, so a report built later ('study report') still names it.
const commandFile = "command.json"

// recordCommand writes the command line into dir unless one is there: the
// first process's (a shard's, a continuation's flags are the same study).
func recordCommand(dir string, command []string) error {
	path := filepath.Join(dir, commandFile)
	if _, err := os.Stat(path); err == nil || len(command) == 0 {
		return nil
	}
	return runstore.Save(path, command, marshalFinite)
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

// loadRun reads the result of spec saved at path, and refuses a file that
// is not one (runstore.Load).
func loadRun(path string, spec runSpec) (Run, error) {
	return runstore.Load(path, func(r Run) error { return r.isResultOf(spec) })
}

// runSchema is the version of a run file's layout; a file of another
// version is run again. 2: protocols, failures, the Hessian's top eigenvalue.
const runSchema = 2

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
	if pa, pb := r.Protocol, spec.Protocol; pa.Kind != pb.Kind || pa.Epochs != pb.Epochs || pa.BaseBatch != pb.BaseBatch || pa.Metric != pb.Metric || pa.Target != pb.Target {
		return fmt.Errorf("its protocol is %s, not the planned %s", r.Protocol, spec.Protocol)
	}
	if r.Error != "" { // a run that failed or diverged is a result too
		return nil
	}
	epochs := spec.Config.Resolved().Epochs
	switch {
	case !spec.Protocol.HasTarget() && len(r.Epochs) != epochs:
		return fmt.Errorf("%d epochs, want %d", len(r.Epochs), epochs)
	case spec.Protocol.HasTarget() && (len(r.Epochs) == 0 || len(r.Epochs) > epochs || (len(r.Epochs) < epochs && r.Reached == nil)):
		return fmt.Errorf("%d epochs without reaching its target, want %d", len(r.Epochs), epochs)
	case r.FinalTrainLoss == nil || r.FinalTrainAccuracy == nil:
		return errors.New("no final train loss and accuracy")
	case spec.Sharpness && (r.Sharpness == nil || r.HessianTop == nil):
		return errors.New("no sharpness")
	case spec.Noise && len(r.Noise) == 0:
		return errors.New("no noise-scale estimates")
	}
	for i, e := range r.Epochs {
		if e.Epoch != i+1 || e.Updates <= 0 || len(e.StepLosses) != e.Updates {
			return fmt.Errorf("epoch %d of %d is incomplete", i+1, len(r.Epochs))
		}
	}
	return nil
}

// execute trains one run on a fresh device, under its protocol.
// Divergence and device errors are results of the run; only cancellation
// is an error of the study.
func execute(ctx context.Context, spec runSpec, p Preset, deviceName string, train, test *data.Dataset) (run Run, err error) {
	run = Run{Schema: runSchema, ID: spec.ID, Experiment: spec.Experiment, Variant: spec.Variant, Batch: spec.Batch, Seed: spec.Seed,
		Config: spec.Config, Protocol: spec.Protocol}
	if spec.TrainSamples > 0 {
		train = train.Subset(spec.TrainSamples)
	}
	d, err := device.Open(deviceName)
	if err != nil {
		return run, err
	}
	defer d.Close()
	run.Device = d.Info()
	start := time.Now()
	defer func() { run.Seconds, run.Finished = time.Since(start).Seconds(), time.Now().UTC() }() // named results: it lands
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
		measure := func(epoch int, loss float64) {
			if measureErr != nil {
				return
			}
			var e engine.NoiseEstimate
			if e, measureErr = meter.Sample(p.NoiseSamples); measureErr != nil {
				return
			}
			run.Noise = append(run.Noise, NoisePoint{Epoch: epoch, Updates: tr.TotalUpdates(), GradSq: e.GradSq(),
				TraceSigma: e.TraceSigma(), BSimple: e.BSimple(), Measurements: e.Count(), TrainLoss: loss})
		}
		// Early in training the noise scale moves fast: measure at a
		// quarter and a half of the first epoch, then after every epoch,
		// each with the training loss so far in its epoch.
		hooks.Step = func(epoch, done, total int) {
			if epoch == 1 && (done == total/4 || done == total/2) {
				part, err := tr.Partial()
				if err != nil {
					measureErr = err
					return
				}
				measure(epoch, part.TrainLoss)
			}
		}
		hooks.Epoch = func(s engine.EpochStats) { measure(s.Epoch, s.TrainLoss) }
	}
	got, err := trainUnder(ctx, tr, spec.Protocol, train, hooks)
	run.Epochs, run.Reached = got.epochs, got.reached
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
		run.FinalTrainLoss, run.FinalTrainAccuracy = got.trainLoss, got.trainAcc
		if err := finalMeasures(&run, tr, train, spec, p); err != nil {
			run.Error = err.Error()
		}
	}
	run.Failed = run.failure()
	return run, nil
}

// finalMeasures evaluates the trained model on the whole training set (the
// train accuracy of an epoch is a running mean over changing weights; the
// generalization gap needs the final model's), unless a train-to-target
// check just did, and measures sharpness.
func finalMeasures(run *Run, tr *engine.Trainer, train *data.Dataset, spec runSpec, p Preset) error {
	if run.FinalTrainLoss == nil {
		loss, acc, err := tr.Evaluate(train)
		if err != nil {
			return err
		}
		run.FinalTrainLoss, run.FinalTrainAccuracy = &loss, &acc
	}
	if spec.Sharpness {
		phi, err := engine.Sharpness(tr, p.Sharpness)
		if err != nil {
			return err
		}
		lambda, err := engine.HessianTop(tr, p.Hessian)
		if err != nil {
			return err
		}
		run.Sharpness, run.HessianTop = &phi, &lambda
	}
	return nil
}

// chanceAccuracy is guessing's accuracy on MNIST and Fashion-MNIST (10
// classes); a run within collapseMargin of it learned nothing.
const chanceAccuracy, collapseMargin = 0.1, 0.05

// failure says why a finished run counts as failed, "" if it does not:
// it diverged, its test accuracy collapsed to chance, or its training loss
// ended at or above where it started (its first step's). Such a run is a
// result, shown as failed, and never a number inside a mean.
func (r Run) failure() string {
	if r.Diverged {
		return "diverged (the loss became NaN or Inf)"
	}
	if r.Error != "" || len(r.Epochs) == 0 {
		return ""
	}
	f := r.Final()
	if f.TestAccuracy <= chanceAccuracy+collapseMargin {
		return "collapsed to chance: test accuracy " + accuracy.with(f.TestAccuracy)
	}
	final := f.TrainLoss
	if r.FinalTrainLoss != nil {
		final = *r.FinalTrainLoss
	}
	if first := r.Epochs[0].StepLosses; len(first) > 0 && final >= float64(first[0]) {
		return fmt.Sprintf("its training loss ended at %s, not below its initial %s", lossQ.format(final), lossQ.format(float64(first[0])))
	}
	return ""
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
