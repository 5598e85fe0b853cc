package study

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"flag"
	"html"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/buildinfo"
	"github.com/batchlab/batchlab/engine/device"
)

var reportOut = flag.String("report-out", "", "also write the synthetic report into this directory, to look at")

const trainN = 10000 // samples of the synthetic study

// collapsedAccuracy is the final test accuracy of the synthetic study's
// run that collapsed to chance.
const collapsedAccuracy = 0.098

// synthRun makes up a plausible run: a loss that falls with the number of
// updates, so large batches end higher, and costs that follow the batch.
func synthRun(exp, variant string, batch int, seed uint64, batches []int, rng *rand.Rand) Run {
	run := Run{ID: exp + "_" + variant + "_b" + strconv.Itoa(batch) + "_s" + strconv.FormatUint(seed, 10),
		Experiment: exp, Variant: variant, Batch: batch, Seed: seed,
		Config: engine.Config{Hidden: []int{128}, Batch: batch, LR: 0.05, Momentum: 0.9, Epochs: len(batches), Seed: seed, BaseBatch: 64, LRScale: engine.ScaleNone, DecayFactor: 0.1, MaxBatch: batch}}
	total := 0
	for i, b := range batches {
		steps := (trainN + b - 1) / b
		e := engine.EpochStats{Epoch: i + 1, Batch: b, LR: 0.05, Updates: steps, Samples: trainN,
			H2DBytes: int64(trainN * 785 * 4), H2DCopies: int64(2 * steps)}
		var sum float64
		for range steps {
			total++
			l := 0.06 + 2.2*math.Exp(-float64(total)/60) + 0.05*rng.NormFloat64()*math.Exp(-float64(total)/400)
			e.StepLosses = append(e.StepLosses, float32(math.Max(l, 0.01)))
			sum += l
		}
		e.TotalUpdates = total
		e.TrainLoss = sum / float64(steps)
		e.TestLoss = 1.08*e.TrainLoss + 0.01*rng.Float64()
		e.TestAccuracy = 0.985 - 0.9*e.TestLoss/2.3 - 0.003*rng.Float64()
		e.TrainAccuracy = e.TestAccuracy + 0.002*math.Log2(float64(b)/32)
		e.Seconds = 0.9 + 0.004*float64(steps) + 0.02*rng.Float64()
		e.SamplesPerSec = trainN / e.Seconds
		e.TransferSeconds, e.UpdateSeconds = 0.0008*float64(steps), 0.0015*float64(steps)
		e.ComputeSeconds = e.Seconds - e.TransferSeconds - e.UpdateSeconds
		run.Epochs = append(run.Epochs, e)
		run.Seconds += e.Seconds + 0.3
	}
	train := run.Final().TrainAccuracy + 0.004
	run.FinalTrainAccuracy = &train
	return run
}

func repeat(b, n int) []int {
	bs := make([]int, n)
	for i := range bs {
		bs[i] = b
	}
	return bs
}

// synthResults is a small study with every experiment, two seeds, a run
// that diverged with NaN losses, two that diverged before their second
// epoch, a failed run and a noise estimate that starts at +Inf.
func synthResults() *Results {
	rng := rand.New(rand.NewPCG(1, 2))
	p := Preset{Name: "synthetic", TrainSamples: trainN, TestSamples: 2000, Hidden: []int{128},
		Epochs: 3, Seeds: []uint64{1, 2}, Batches: []int{64, 256, 1024, 4096}, BaseBatch: 64, BaseLR: 0.05, Momentum: 0.9,
		WarmupEpochs: 1, ScalingMargin: 0.01, ScheduleEpochs: 6, DecayEpochs: []int{2, 4}, DecayFactor: 0.2, LargeBatch: 1024, GhostBatch: 64,
		Keskar:     KeskarPlan{TrainSamples: trainN, Hidden: []int{128}, SmallBatch: 256, LargeFraction: 0.1, LR: 1e-3, Target: 0.99, MaxEpochs: 8},
		Sharpness:  engine.SharpnessConfig{Epsilon: 1e-3, Samples: 1024, Steps: 5, Seed: 1},
		Hessian:    engine.HessianConfig{Samples: 1024, Iterations: 10, Epsilon: 1e-3, Seed: 1},
		Cost:       CostPlan{Rule: engine.ScaleSqrt, Target: 0.5, MaxEpochs: 6},
		NoiseSmall: 64, NoiseBig: 1024, NoiseSamples: 4}
	r := &Results{Preset: p,
		Device:  device.Info{Kind: "cpu", Name: "synthetic test CPU", Threads: 2},
		Command: []string{"batchlab", "study", "--plan", "synthetic.yaml", "--out", "my study"},
		Build:   buildinfo.Info{Version: "(devel)", Revision: "0123456789abcdef0123", GoVersion: "go1.26.0"},
		Started: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC), Finished: time.Date(2025, 3, 1, 9, 7, 31, 0, time.UTC)}
	for _, seed := range p.Seeds {
		for _, b := range p.Batches {
			run := synthRun(FixedLR, "none", b, seed, repeat(b, p.Epochs), rng)
			sharp := 0.4 * math.Sqrt(float64(b)) * (1 + 0.1*rng.Float64())
			run.Sharpness = &sharp
			if b == 4096 && seed == 2 { // its second epoch blew up
				run.Diverged, run.Error = true, "training diverged: the loss of step 2 of epoch 2 is NaN"
				run.Sharpness, run.FinalTrainAccuracy = nil, nil
				e := &run.Epochs[1]
				e.StepLosses[1], e.StepLosses[2] = float32(math.Inf(1)), float32(math.NaN())
				e.TrainLoss, e.TestLoss, e.TestAccuracy = math.NaN(), math.NaN(), 0.098
				run.Epochs = run.Epochs[:2]
			}
			r.Runs = append(r.Runs, run)
		}
		for _, rule := range []string{"linear", "sqrt"} {
			for _, b := range p.Batches {
				run := synthRun(LRScaling, rule, b, seed, repeat(b, p.Epochs), rng)
				if rule == "linear" && b == 4096 { // diverged in epoch 2, as the runner records it
					run.Diverged, run.Error = true, "training diverged: the loss of step 0 of epoch 2 is +Inf"
					run.Epochs, run.FinalTrainAccuracy = run.Epochs[:1], nil
				}
				if rule == "sqrt" && b == 4096 && seed == 1 { // finished at chance
					run.Epochs[len(run.Epochs)-1].TestAccuracy = collapsedAccuracy
					run.Failed = "collapsed to chance: test accuracy 9.80 %"
				}
				r.Runs = append(r.Runs, run)
			}
		}
		r.Runs = append(r.Runs,
			synthRun(Schedule, "constant", 64, seed, repeat(64, p.ScheduleEpochs), rng),
			synthRun(Schedule, "step-decay", 64, seed, repeat(64, p.ScheduleEpochs), rng),
			synthRun(Schedule, "increase-batch", 64, seed, []int{64, 64, 320, 320, 1600, 1600}, rng),
			synthRun(Regime, "SB", 64, seed, repeat(64, p.Epochs), rng),
			synthRun(Regime, "LB", 1024, seed, repeat(1024, p.Epochs), rng))
		if seed == 2 {
			r.Runs = append(r.Runs, Run{ID: "regime_LB+GBN_b1024_s2", Experiment: Regime, Variant: "LB+GBN", Batch: 1024, Seed: 2,
				Error: "cuda: out of memory allocating 512 MiB"})
		} else {
			r.Runs = append(r.Runs, synthRun(Regime, "LB+GBN", 1024, seed, repeat(1024, p.Epochs), rng))
		}
		r.Runs = append(r.Runs, synthRun(Regime, "LB+GBN+RA", 1024, seed, repeat(1024, 16*p.Epochs), rng))
	}
	for _, seed := range p.Seeds {
		// (d) Keskar: SB and LB trained to the target; LB seed 2 never gets there.
		for _, v := range []struct {
			name   string
			batch  int
			epochs int
		}{{"SB", 256, 4}, {"LB", 1000, 7}} {
			epochs := v.epochs
			if v.name == "LB" && seed == 2 {
				epochs = p.Keskar.MaxEpochs
			}
			run := synthRun(Keskar, v.name, v.batch, seed, repeat(v.batch, epochs), rng)
			run.Protocol = Protocol{Kind: TrainToTarget, Epochs: p.Keskar.MaxEpochs, Metric: TrainAccuracy, Target: p.Keskar.Target}
			if !(v.name == "LB" && seed == 2) {
				run.Reached = &Reached{Epoch: epochs, Value: 0.991, Updates: run.Final().TotalUpdates, Seconds: run.Seconds}
			}
			sharp, top := 1+0.004*float64(v.batch)*(1+0.1*rng.Float64()), 20+0.05*float64(v.batch)*(1+0.1*rng.Float64())
			run.Sharpness, run.HessianTop = &sharp, &top
			r.Runs = append(r.Runs, run)
		}
		// (f) time to 50 % test accuracy; B=1024 seed 2 does not reach it.
		for _, b := range []int{64, 256, 1024} {
			run := synthRun(Cost, "sqrt", b, seed, repeat(b, 3), rng)
			run.Protocol = Protocol{Kind: TimeToAccuracy, Epochs: p.Cost.MaxEpochs, Metric: TestAccuracy, Target: p.Cost.Target}
			if !(b == 1024 && seed == 2) {
				e := run.Epochs[1]
				run.Reached = &Reached{Epoch: 2, Value: e.TestAccuracy, Updates: e.TotalUpdates, Seconds: 2 * e.Seconds * (1 + 0.1*float64(seed)),
					TransferSeconds: 2 * e.TransferSeconds, ComputeSeconds: 2 * e.ComputeSeconds, UpdateSeconds: 2 * e.UpdateSeconds,
					H2DCopies: 2 * e.H2DCopies, H2DBytes: 2 * e.H2DBytes}
			}
			r.Runs = append(r.Runs, run)
		}
		// (g) a noise run per seed
		noise := synthRun(Noise, "base", 64, seed, repeat(64, p.Epochs), rng)
		for i, u := range []int{39, 78, 157, 314, 471} {
			b := (150 + 250*float64(i)) * (1 + 0.2*float64(seed))
			loss := 2.2 * math.Exp(-float64(u)/300)
			if i == 0 {
				b, loss = math.Inf(1), 2.3 // |G|² not yet estimated positive
			}
			noise.Noise = append(noise.Noise, NoisePoint{Epoch: max(1, i), Updates: u, GradSq: 0.5 / float64(i+1), TraceSigma: 80, BSimple: b,
				Measurements: 4, TrainLoss: loss})
		}
		r.Runs = append(r.Runs, noise)
	}
	r.Findings = []Finding{
		{Claim: "With a fixed learning rate, larger batches reach a worse loss", Source: "Keskar et al. 2017", Verdict: Reproduced,
			Measured: "B=64: test loss 0.09; B=4096: test loss 0.61", Numbers: map[string]float64{"test_loss_b64": 0.0912, "test_loss_b4096": 0.6113}},
		{Claim: "Scaling the LR closes most of that gap", Source: "Goyal et al. 2017; Hoffer et al. 2017", Verdict: Partly,
			Measured: "sqrt closes 41% of the gap <at B=4096>", Numbers: map[string]float64{"closed_sqrt": 0.41, "closed_linear": math.NaN()}},
		{Claim: "Increasing the batch gives the same accuracy with fewer updates", Source: "Smith et al. 2018", Verdict: NotReproduced,
			Measured: "step decay 96.1% in 939 updates; increase-batch 93.0% in 370", Numbers: map[string]float64{"updates_ratio": 0.394}},
		{Claim: "The gap comes from too few updates", Source: "Hoffer et al. 2017", Verdict: Inconclusive,
			Measured: "the regime runs did not finish", Numbers: map[string]float64{}},
		{ID: "generalization", Claim: "Trained to the same training accuracy, the large batch generalizes worse", Source: "Keskar et al. 2017", Verdict: Inconclusive,
			Rule: "inconclusive unless every SB and LB run reached the target", Protocol: "train-to-target: until train accuracy ≥ 99 %",
			Measured: "SB 96.12 %, LB 95.80 %", MinSeeds: 3, Seeds: 1,
			Numbers:   map[string]float64{"test_acc_gap": 0.0032},
			Intervals: map[string]Interval{"test_acc_gap": {Mean: 0.0032, Lo: -0.0011, Hi: 0.0075, N: 2, Level: 0.95, Method: "paired t"}},
			Caveats:   []string{"keskar_LB_b1000_s2 did not reach its target within 8 epochs"}},
	}
	return r
}

// svgs returns the SVG elements of a page.
func svgs(page string) []string {
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		if j < 0 {
			return append(out, page[i:])
		}
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j:]
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readCSV(t *testing.T, dir, name string, columns int) [][]string {
	t.Helper()
	cr := csv.NewReader(strings.NewReader(readFile(t, dir, name)))
	cr.FieldsPerRecord = columns
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rows
}

// checkPage checks what every report page must be: well formed, every plot
// a well-formed SVG free of NaN, one section per experiment.
func checkPage(t *testing.T, page string) {
	t.Helper()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("report.html is not a whole HTML document")
	}
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	var text strings.Builder // what a reader sees: the page's and the plots' text, not the style sheet
	inStyle := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("report.html does not tokenize: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			inStyle = tok.Name.Local == "style"
		case xml.EndElement:
			inStyle = false
		case xml.CharData:
			if !inStyle {
				text.Write(tok)
				text.WriteByte(' ')
			}
		}
	}
	if bad := overPrecise(text.String()); len(bad) > 0 {
		t.Errorf("numbers written with more digits than their quantity allows: %q", bad)
	}
	offline := strings.NewReplacer(`xmlns="http://www.w3.org/2000/svg"`, "", `xmlns:xlink="http://www.w3.org/1999/xlink"`, "").Replace(page)
	for _, bad := range []string{"http:", "https:", "<script", "<link", "url("} {
		if strings.Contains(offline, bad) {
			t.Errorf("report.html contains %q: it must work offline", bad)
		}
	}
	for i, s := range svgs(page) {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("SVG %d is not well-formed XML: %v", i, err)
			}
		}
		for _, bad := range []string{"NaN", "Inf"} {
			if strings.Contains(s, bad) {
				t.Errorf("SVG %d contains %s", i, bad)
			}
		}
	}
	if n := strings.Count(page, "<section "); n != 10 {
		t.Errorf("%d sections, want one per experiment (7) and those of the settings, references and precisions", n)
	}
	for _, want := range []string{"How this study was run", "Goyal et al. 2017", "Keskar et al. 2017", "Hoffer et al. 2017",
		"Smith et al. 2018", "McCandlish et al. 2018", "Shallue et al. 2019", "arXiv:1812.06162", "How numbers are written"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

func TestWriteReport(t *testing.T) {
	r := synthResults()
	dir := t.TempDir()
	if err := writeReport(dir, r); err != nil {
		t.Fatal(err)
	}
	if *reportOut != "" {
		if err := writeReport(*reportOut, r); err != nil {
			t.Fatal(err)
		}
	}
	page := readFile(t, dir, reportFile)
	checkPage(t, page)

	// One plot per figure: 2 fixed LR, 1 scaling, 4 schedule, 4 Keskar,
	// 2 regime, 3 cost, 2 noise; none missing, each also a PNG and an SVG.
	if n := len(svgs(page)); n != 18 {
		t.Errorf("%d plots, want 18", n)
	}
	if files, err := os.ReadDir(filepath.Join(dir, figuresDir)); err != nil || len(files) != 2*18 {
		t.Errorf("%d figure files, want %d: %v", len(files), 2*18, err)
	}
	if strings.Contains(page, "could not be drawn") || strings.Contains(page, "Not run") {
		t.Error("a plot or section is missing from the full report")
	}
	if n := strings.Count(page, `<tr class="finding `); n != len(r.Findings) {
		t.Errorf("%d finding rows, want %d", n, len(r.Findings))
	}
	for _, f := range r.Findings {
		i := strings.Index(page, ">"+f.Claim+"<")
		if i < 0 {
			t.Errorf("finding %q is not in the table", f.Claim)
			continue
		}
		row := page[i : i+strings.Index(page[i:], "</tr>")]
		if !strings.Contains(row, ">"+f.Verdict+"<") || !strings.Contains(row, `verdict `+verdictClass(f.Verdict)) {
			t.Errorf("the row of %q does not carry its verdict %q", f.Claim, f.Verdict)
		}
		for k, v := range f.Numbers {
			if !strings.Contains(row, k+" = "+quantityOf(k).with(v)) {
				t.Errorf("the row of %q lacks the number %s", f.Claim, k)
			}
		}
	}
	if !strings.Contains(page, "at B=4096&gt;") {
		t.Error("the measured text is not HTML-escaped")
	}
	for _, want := range []string{"Diverged: none, B=4096, seed 2, in epoch 2", "Diverged: linear, B=4096, seed 1, in epoch 2",
		"Failed: LB+GBN, B=1024, seed 2: cuda: out of memory", "synthetic test CPU", "7m31s",
		"Failed: sqrt, B=4096, seed 1: collapsed to chance", "Not converged: LB, B=1000, seed 2 did not reach train-to-target",
		"batchlab study --plan synthetic.yaml --out 'my study'", "batchlab (devel) 0123456789ab go1.26.0",
		"keskar_LB_b1000_s2 did not reach its target", "test_acc_gap = 0.32 points, 95 % CI [-0.11, 0.75] (paired t, 2 seeds)",
		"Rule:", "1 seed; the rule needs 3", `href="#ref-keskar-2017"`,
		`href="results.json"`, `href="runs.csv"`, `href="findings.csv"`, "B_crit ≈", "at the fit's target loss"} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}

	rows := readCSV(t, dir, runsFile, len(runsHeader))
	want := 1
	for _, run := range r.Runs {
		want += max(1, len(run.Epochs))
	}
	if len(rows) != want {
		t.Errorf("runs.csv: %d rows, want %d (a header and a row per run and epoch)", len(rows), want)
	}
	col := func(name string) int { return slices.Index(runsHeader, name) }
	byID := map[string][][]string{}
	for _, row := range rows[1:] {
		byID[row[0]] = append(byID[row[0]], row)
	}
	if f := byID["regime_LB+GBN_b1024_s2"]; len(f) != 1 || f[0][col("epoch")] != "" || !strings.Contains(f[0][col("error")], "out of memory") {
		t.Errorf("runs.csv: the failed run: %q", f)
	}
	if f := byID["fixed-lr_none_b64_s1"]; len(f) != 3 || f[0][col("sharpness")] != "" || f[2][col("sharpness")] == "" || f[2][col("final_train_accuracy")] == "" {
		t.Errorf("runs.csv: the final measures are not on the last row only: %q", f)
	}
	if f := byID["fixed-lr_none_b4096_s2"]; len(f) != 2 || f[1][col("train_loss")] != "NaN" || f[1][col("diverged")] != "true" {
		t.Errorf("runs.csv: the diverged run: %q", f)
	}
	if f := byID["schedule_increase-batch_b64_s1"]; len(f) != 6 || f[5][col("batch")] != "1600" {
		t.Errorf("runs.csv: the batch is not the epoch's: %q", f)
	}
	if f := byID["keskar_LB_b1000_s2"]; len(f) != 8 || f[7][col("converged")] != "false" || f[7][col("reached_epoch")] != "" || f[0][col("converged")] != "" {
		t.Errorf("runs.csv: the Keskar run short of its target: %q", f)
	}
	if f := byID["cost_sqrt_b64_s1"]; len(f) != 3 || f[2][col("converged")] != "true" || f[2][col("reached_epoch")] != "2" || f[2][col("reached_seconds")] == "" ||
		!strings.HasPrefix(f[2][col("protocol")], "time-to-accuracy") {
		t.Errorf("runs.csv: where a cost run reached its target: %q", f)
	}
	if f := byID["lr-scaling_sqrt_b4096_s1"]; len(f) == 0 || !strings.Contains(f[len(f)-1][col("failed")], "collapsed") {
		t.Errorf("runs.csv: the collapsed run is not marked failed: %q", f)
	}
	findings := readCSV(t, dir, findingsFile, len(findingsHeader))
	if len(findings) != len(r.Findings)+1 {
		t.Errorf("findings.csv: %d rows, want %d", len(findings), len(r.Findings)+1)
	}
	if last := findings[len(findings)-1]; last[0] != "generalization" || last[slices.Index(findingsHeader, "intervals")] != "test_acc_gap=0.0032 [-0.0011, 0.0075] (paired t, 0.95, n=2)" ||
		!strings.Contains(last[slices.Index(findingsHeader, "caveats")], "did not reach its target") || last[slices.Index(findingsHeader, "min_seeds")] != "3" {
		t.Errorf("findings.csv: the finding with intervals and caveats: %q", last)
	}
	var estimates int
	for _, run := range r.Runs {
		estimates += len(run.Noise)
	}
	if noise := readCSV(t, dir, noiseFile, len(noiseHeader)); len(noise) != estimates+1 || noise[1][slices.Index(noiseHeader, "train_loss")] != "2.3" {
		t.Errorf("noise.csv: %d rows, want %d, first %q", len(noise), estimates+1, noise[min(1, len(noise)-1)])
	}

	raw := readFile(t, dir, resultsFile)
	var back Results
	if err := json.Unmarshal([]byte(raw), &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(back.Runs) != len(r.Runs) || len(back.Findings) != len(r.Findings) || !back.Started.Equal(r.Started) {
		t.Fatalf("results.json: %d runs, %d findings, started %v", len(back.Runs), len(back.Findings), back.Started)
	}
	for i, run := range r.Runs {
		if run.ID != "fixed-lr_none_b4096_s2" && run.Experiment != Noise && !reflect.DeepEqual(back.Runs[i], run) {
			t.Errorf("run %s does not round-trip through results.json", run.ID)
		}
	}
	if !strings.Contains(raw, `"b_simple": null`) || !strings.Contains(raw, `"closed_linear": null`) {
		t.Error("results.json: the non-finite values are not null")
	}
	if back.Findings[1].Numbers["closed_sqrt"] != 0.41 || !reflect.DeepEqual(back.Preset, r.Preset) {
		t.Error("results.json: the preset or a finding's numbers did not round-trip")
	}
}

// Where nothing is non-finite, results.json is exactly what encoding/json
// writes.
func TestMarshalFiniteMatchesEncodingJSON(t *testing.T) {
	r := synthResults()
	r.Runs = r.Runs[:3]
	r.Findings = r.Findings[:1]
	got, err := marshalFinite(r)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(want, '\n')) {
		t.Errorf("marshalFinite differs from encoding/json:\n%.600s\nwant\n%.600s", got, want)
	}
}

func TestWriteReportEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := writeReport(dir, &Results{}); err != nil {
		t.Fatal(err)
	}
	page := readFile(t, dir, reportFile)
	checkPage(t, page)
	if n := strings.Count(page, "Not run"); n != 7 {
		t.Errorf("%d sections say “not run”, want 7", n)
	}
	if len(svgs(page)) != 0 {
		t.Error("an empty study drew plots")
	}
	if rows := readCSV(t, dir, runsFile, len(runsHeader)); len(rows) != 1 {
		t.Errorf("runs.csv of no runs has %d rows", len(rows))
	}
	if err := writeReport(dir, nil); err == nil {
		t.Error("nil results: no error")
	}
}

// Studies that went badly still get a report, with no NaN reaching a plot.
func TestWriteReportDegenerate(t *testing.T) {
	allDiverged := synthResults()
	for i := range allDiverged.Runs {
		allDiverged.Runs[i].Diverged = true
		for j := range allDiverged.Runs[i].Noise {
			allDiverged.Runs[i].Noise[j].BSimple = math.Inf(1)
		}
	}
	oneRun := synthResults()
	oneRun.Runs = oneRun.Runs[:1]
	failed := synthResults()
	for i := range failed.Runs {
		failed.Runs[i] = Run{ID: failed.Runs[i].ID, Experiment: failed.Runs[i].Experiment, Variant: failed.Runs[i].Variant,
			Batch: failed.Runs[i].Batch, Error: "no device"}
	}
	for name, r := range map[string]*Results{"all diverged": allDiverged, "one run": oneRun, "all failed": failed} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeReport(dir, r); err != nil {
				t.Fatal(err)
			}
			page := readFile(t, dir, reportFile)
			checkPage(t, page)
			if strings.Contains(page, "could not be drawn") {
				t.Error("a plot could not be drawn")
			}
		})
	}
}

// A new report replaces an old one whole, its figures included, and
// leaves no temporary files.
func TestWriteReportReplaces(t *testing.T) {
	dir := t.TempDir()
	if err := writeReport(dir, synthResults()); err != nil {
		t.Fatal(err)
	}
	figs, err := os.ReadDir(filepath.Join(dir, figuresDir))
	if err != nil || len(figs) == 0 {
		t.Fatalf("no figures written: %v", err)
	}
	if err := writeReport(dir, &Results{}); err != nil {
		t.Fatal(err)
	}
	if figs, _ := os.ReadDir(filepath.Join(dir, figuresDir)); len(figs) != 0 {
		t.Errorf("a report with no plots left %d figure files of the last one", len(figs))
	}
	if err := writeReport(dir, synthResults()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Errorf("%d files after three reports, want 6: %v", len(entries), entries)
	}
	if strings.Contains(readFile(t, dir, reportFile), "Not run") {
		t.Error("the old report was not replaced")
	}
}

// A run that collapsed to chance is marked, not averaged in, and does not
// stretch the axis: the accuracy plot's range stays above its accuracy.
// A run short of its target is marked on the time-to-accuracy plot.
func TestReportMarksFailedRuns(t *testing.T) {
	f := newFigures(synthResults())
	p, err := f.accuracy()
	if err != nil || p == nil {
		t.Fatalf("accuracy plot: %v", err)
	}
	if p.Y.Min <= 100*collapsedAccuracy {
		t.Errorf("the accuracy axis starts at %.2f %%, at or below the collapsed run's %.2f %%", p.Y.Min, 100*collapsedAccuracy)
	}
	svg, err := plotkit.InlineSVG(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg, "not in mean") {
		t.Error("the accuracy plot does not mark the runs it leaves out")
	}
	p, err = f.testLoss()
	if err != nil || p == nil {
		t.Fatalf("test-loss plot: %v", err)
	}
	if svg, err = plotkit.InlineSVG(p); err != nil || !strings.Contains(svg, "failed: not in band") {
		t.Errorf("the test-loss plot does not mark the diverged run where it ended (%v)", err)
	}
	p, err = f.timeToTarget()
	if err != nil || p == nil {
		t.Fatalf("time-to-accuracy plot: %v", err)
	}
	if svg, err = plotkit.InlineSVG(p); err != nil || !strings.Contains(svg, "did not reach the target") {
		t.Errorf("the time-to-accuracy plot does not mark the run short of its target (%v)", err)
	}
}

// The report of a real tiny study: every figure drawn, on the page and as
// a PNG that decodes, every number within its precision, the command there.
func TestReportOfTinyStudy(t *testing.T) {
	dir := t.TempDir()
	res, err := Execute(context.Background(), Presets()["tiny"], Options{Dir: dir, Device: "cpu", DataDir: subset,
		Command: []string{"batchlab", "study", "--preset", "tiny"}})
	if err != nil {
		t.Fatal(err)
	}
	page := readFile(t, dir, reportFile)
	checkPage(t, page)
	if strings.Contains(page, "could not be drawn") {
		t.Error("a plot could not be drawn")
	}
	if !strings.Contains(page, "batchlab study --preset tiny") {
		t.Error("the page does not give the command that ran the study")
	}
	figs := svgs(page)
	for _, name := range figureNames(t, page) {
		f, err := os.Open(filepath.Join(dir, figuresDir, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 {
			t.Errorf("%s.png: %v", name, err)
		}
	}
	if n := len(figureNames(t, page)); n != len(figs) || n < 15 {
		t.Errorf("%d figure files named for %d plots", n, len(figs))
	}
	if len(res.Runs) == 0 {
		t.Error("no runs")
	}
}

// figureNames are the figures a page links to as PNG.
func figureNames(t *testing.T, page string) []string {
	t.Helper()
	var names []string
	for _, m := range regexp.MustCompile(`href="figures/([a-z0-9-]+)\.png"`).FindAllStringSubmatch(page, -1) {
		names = append(names, m[1])
	}
	return names
}

// snapLog leaves a log axis at least two labelled 1-2-5 ticks, so that
// plotkit never labels its ends with every digit.
func TestSnapLog(t *testing.T) {
	for _, c := range []struct{ lo, hi, wantLo, wantHi float64 }{
		{0.0239068, 0.0461775, 0.02, 0.05},
		{0.3, 0.35, 0.2, 0.5},
		{0.05, 2.3, 0.05, 2.3}, // enough ticks already
		{1, 100, 1, 100},
		{697, 697, 348.5, 1394}, // one value: WidenLog, then 500 and 1000 lie inside
	} {
		a := plot.Axis{Min: c.lo, Max: c.hi}
		snapLog(&a)
		if math.Abs(a.Min-c.wantLo) > 1e-9*c.wantLo || math.Abs(a.Max-c.wantHi) > 1e-9*c.wantHi {
			t.Errorf("snapLog [%g, %g] = [%g, %g], want [%g, %g]", c.lo, c.hi, a.Min, a.Max, c.wantLo, c.wantHi)
		}
	}
}
