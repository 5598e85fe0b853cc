package study

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
	"github.com/batchlab/batchlab/engine"
)

// The page model: what report.html.tmpl shows, built from the Results.

// pageTemplate is the report's one page; its style sheet is inline, so the
// page is a single file that needs nothing from the network.
//
//go:embed report.html.tmpl
var pageHTML string

var pageTemplate = template.Must(template.New("report").Parse(pageHTML))

type page struct {
	Title    string
	Summary  string
	Verdicts []verdictCount
	Findings []findingRow
	// A partial study: the runs without a result, the findings they touch.
	Missing, Undecided []string
	Sections           []section
	// How the study was run: the command, the code, the machine, the
	// preset; then the papers cited and the precision of every number.
	CommandLine string
	Reproduce   []fact
	Files       []string
	References  []reference
	Precision   []fact
}

type verdictCount struct {
	Verdict, Class string
	N              int
}

type findingRow struct {
	Claim, Measured, Verdict, Class string
	Sources                         []cite
	Rule, Protocol, Seeds           string
	Caveats                         []string
	Intervals, Numbers              []fact
}

type fact struct{ Key, Value string }

type section struct {
	ID, Title, Intro string
	NotRun           bool
	Settings         []string // the resolved configs of its runs, in words
	Notes            []string // diverged and failed runs
	NotesRule        string   // what the section does with them
	Figures          []figure
	Tables           []table
}

// figure is a plot with its caption, or the reason there is none. Name
// is its file in the report's figures directory (name.png, name.svg).
type figure struct {
	Name    string
	SVG     template.HTML
	Caption string
	Missing string
	plot    *plot.Plot
}

type table struct {
	Head []string
	Rows [][]string
	Wide bool // a row of its own: no figure beside it
}

// verdictClass styles a verdict: green, amber, red, grey.
func verdictClass(v string) string {
	switch v {
	case Reproduced:
		return "ok"
	case Partly:
		return "partly"
	case NotReproduced:
		return "bad"
	}
	return "na"
}

// renderPage renders the page of r and returns it with its figures, to be
// saved beside it.
func renderPage(r *Results) ([]byte, []figure, error) {
	f := newFigures(r)
	p := page{
		Title:       "batchlab: what batch size changes",
		Summary:     summary(r),
		Verdicts:    verdictCounts(r),
		Sections:    f.sections(),
		Reproduce:   reproduce(r),
		CommandLine: shellLine(r.Command),
		Files:       []string{resultsFile, runsFile, findingsFile, noiseFile, figuresDir + "/"},
		References:  references,
		Precision:   precisionTable(),
		Missing:     r.Missing, Undecided: r.Undecided,
	}
	for _, fd := range r.Findings {
		row := findingRow{Claim: fd.Claim, Sources: citations(fd.Source), Measured: fd.Measured, Verdict: fd.Verdict, Class: verdictClass(fd.Verdict),
			Rule: fd.Rule, Protocol: fd.Protocol, Caveats: fd.Caveats}
		if fd.MinSeeds > 0 {
			row.Seeds = fmt.Sprintf("%s; the rule needs %d", count(fd.Seeds, "seed"), fd.MinSeeds)
		}
		for _, k := range slices.Sorted(maps.Keys(fd.Intervals)) {
			row.Intervals = append(row.Intervals, fact{k, intervalText(quantityOf(k), fd.Intervals[k])})
		}
		for _, k := range slices.Sorted(maps.Keys(fd.Numbers)) {
			row.Numbers = append(row.Numbers, fact{k, quantityOf(k).with(fd.Numbers[k])})
		}
		p.Findings = append(p.Findings, row)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, nil, fmt.Errorf("report: %w", err)
	}
	var figs []figure
	for _, s := range p.Sections {
		figs = append(figs, s.Figures...)
	}
	return buf.Bytes(), figs, nil
}

// summary says what was run and how the verdicts came out, in numbers only:
// the conclusions are the findings'.
func summary(r *Results) string {
	var b strings.Builder
	if len(r.Runs) == 0 {
		b.WriteString("The study recorded no runs, so every experiment below says “not run”.")
	} else {
		var failed, short int
		var seconds float64
		for _, run := range r.Runs {
			seconds += run.Seconds
			switch {
			case failure(run) != "":
				failed++
			case !run.Converged():
				short++
			}
		}
		seeds := "seeds " + joinSeeds(r.Preset.Seeds)
		if len(r.Preset.Seeds) == 1 {
			seeds = "seed " + joinSeeds(r.Preset.Seeds)
		}
		fmt.Fprintf(&b, "The %s study trained %d runs of %s on %s of %s, %s, in %s of training",
			orDefault(r.Preset.Name, "batch-size"), len(r.Runs), r.Preset.modelName(), samples(r.Preset), orDefault(string(r.Dataset), "mnist"), seeds,
			time.Duration(seconds*float64(time.Second)).Round(time.Second))
		if failed+short == 0 {
			b.WriteString("; every run finished healthy and reached its target where it had one.")
		} else {
			fmt.Fprintf(&b, "; %d failed (diverged, collapsed or in error) and %d fell short of their target: each is listed in its section and left out of the means.", failed, short)
		}
	}
	if len(r.Findings) == 0 {
		b.WriteString(" No finding was judged.")
		return b.String()
	}
	var parts []string
	for _, c := range verdictCounts(r) {
		parts = append(parts, fmt.Sprintf("%d %s", c.N, c.Verdict))
	}
	fmt.Fprintf(&b, " Of the %d findings from the literature, %s; each verdict is computed from the numbers shown beside it.",
		len(r.Findings), strings.Join(parts, ", "))
	return b.String()
}

// intervalText writes an interval of quantity q: "2.61 points, 95 % CI
// [0.40, 4.82] (paired t, 3 seeds)"; below two seeds there is none.
func intervalText(q quantity, iv Interval) string {
	if iv.N < 2 || !plotkit.Finite(iv.Lo) || !plotkit.Finite(iv.Hi) {
		return fmt.Sprintf("%s (%s: no interval)", q.with(iv.Mean), count(iv.N, "seed"))
	}
	return fmt.Sprintf("%s, %s %% CI [%s, %s] (%s, %s)", q.with(iv.Mean), fixed(100*iv.Level, 0), q.format(iv.Lo), q.format(iv.Hi), iv.Method, count(iv.N, "seed"))
}

// verdictCounts counts the findings of each verdict that occurs.
func verdictCounts(r *Results) []verdictCount {
	var counts []verdictCount
	for _, v := range []string{Reproduced, Partly, NotReproduced, Inconclusive} {
		n := 0
		for _, fd := range r.Findings {
			if fd.Verdict == v {
				n++
			}
		}
		if n > 0 {
			counts = append(counts, verdictCount{v, verdictClass(v), n})
		}
	}
	return counts
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return orDefault(strings.Join(s, sep), "none")
}

func joinSeeds(xs []uint64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatUint(x, 10)
	}
	return orDefault(strings.Join(s, ", "), "none")
}

func samples(p Preset) string {
	n := func(k int, all string) string {
		if k == 0 {
			return all
		}
		return strconv.Itoa(k)
	}
	return fmt.Sprintf("%s training and %s test samples", n(p.TrainSamples, "all"), n(p.TestSamples, "all"))
}

// presetFacts is the plan in words, every setting of every experiment;
// preset.json in the study's directory is the same plan as a file that
// --plan takes back.
func presetFacts(p Preset) []fact {
	decay := func(epochs []int, factor float64) string {
		if len(epochs) == 0 {
			return "no decay"
		}
		return fmt.Sprintf("×%g after epochs %s", factor, joinInts(epochs, ", "))
	}
	experiments := "all"
	if len(p.Experiments) > 0 {
		experiments = strings.Join(p.Experiments, ", ")
	}
	var rules []string
	for _, r := range p.LRRules {
		rules = append(rules, string(r))
	}
	k := p.Keskar
	critical := "none: (g) is estimated from the sweeps' S(B)"
	if g := p.Grid; g != nil {
		lrs := fmt.Sprintf("LRs %v", g.LRs)
		if len(g.LRs) == 0 {
			lrs = fmt.Sprintf("LR %s at B=%d by the %s rule, ×%g^k for |k| ≤ %d", learningRate.format(g.LRCenter), g.BaseBatch, g.LRScale, g.LRFactor, g.LRSteps)
		}
		critical = fmt.Sprintf("%s, MLP %s, batches %s, %s; constant LR to training losses %v, at most %d epochs; noise runs at B=%d (in %s/)",
			g.OptimizerName(), joinInts(g.Hidden, "–"), joinInts(g.Batches, ", "), lrs, g.Targets, g.MaxEpochs, g.NoiseBatch, gridDir)
	}
	return []fact{
		{"plan", orDefault(p.Name, "unnamed") + " (as a file: preset.json, which --plan takes back)"},
		{"experiments", experiments},
		{"seeds", joinSeeds(p.Seeds)},
		{"data", samples(p)},
		{"model", p.modelName()},
		{"batch sizes", joinInts(p.Batches, ", ")},
		{"base batch B₀, LR η₀", fmt.Sprintf("%d, %s (momentum %g)", p.BaseBatch, learningRate.format(p.BaseLR), p.Momentum)},
		{"LR scaling", fmt.Sprintf("rules %s, %d epochs, warmup %g epochs, %s; a batch kept within %s of B₀", orDefault(strings.Join(rules, ", "), "none"),
			p.Epochs, p.WarmupEpochs, decay(p.ScalingDecayEpochs, p.ScalingDecayFactor), points.with(p.ScalingMargin))},
		{"schedules", fmt.Sprintf("%d epochs, %s", p.ScheduleEpochs, decay(p.DecayEpochs, p.DecayFactor))},
		{"regimes", fmt.Sprintf("%d epochs, %s, weight decay %g; large batch %d, ghost batch %d", p.RegimeEpochs, decay(p.RegimeDecayEpochs, p.DecayFactor), p.WeightDecay, p.LargeBatch, p.GhostBatch)},
		{"Keskar", fmt.Sprintf("%d training samples, MLP %s, Adam at lr %s; SB %d, LB %s of the samples; to %s training accuracy, at most %d epochs",
			k.TrainSamples, joinInts(k.Hidden, "–"), learningRate.format(k.LR), k.SmallBatch, share.with(k.LargeFraction), accuracy.with(k.Target), k.MaxEpochs)},
		{"sharpness", fmt.Sprintf("φ: ε %g, %d samples, %d ascent steps; λ_max: %d power iterations, %d samples, ε %g",
			p.Sharpness.Epsilon, p.Sharpness.Samples, p.Sharpness.Steps, p.Hessian.Iterations, p.Hessian.Samples, p.Hessian.Epsilon)},
		{"time to accuracy", fmt.Sprintf("batches %s, %s rule, to %s test accuracy, at most %d epochs", joinInts(orSweep(p.Cost.Batches, p.Batches), ", "),
			orDefault(string(p.Cost.Rule), "no"), accuracy.with(p.Cost.Target), p.Cost.MaxEpochs)},
		{"noise scale", fmt.Sprintf("batches %d and %d, %d measurements per point", p.NoiseSmall, p.NoiseBig, p.NoiseSamples)},
		{"critical-batch grid", critical},
	}
}

// orSweep is bs, or the sweep's batches where bs is empty.
func orSweep(bs, sweep []int) []int {
	if len(bs) == 0 {
		return sweep
	}
	return bs
}

// reproduce is what it takes to run the study again and to know what ran:
// the code, the data, the device, the preset, the time.
func reproduce(r *Results) []fact {
	dev := "not recorded"
	if r.Device.Kind != "" {
		dev = r.Device.String()
	}
	build := "not recorded"
	if r.Build.Version != "" {
		build = r.Build.String()
		if r.Build.Revision == "" {
			build += " (no VCS commit recorded: built by go run or go test)"
		}
	}
	facts := []fact{
		{"batchlab", build},
		{"dataset", orDefault(string(r.Dataset), "mnist")},
		{"device", dev},
	}
	facts = append(facts, presetFacts(r.Preset)...)
	return append(facts, fact{"timing", timing(r)})
}

// shellLine writes args as a shell would take them back: each argument
// that is not plain is single-quoted. (cmd/batchlab's shellQuote does the
// same for its own messages, in package main, which this cannot import.)
func shellLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		plain := a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == ""
		if plain {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// precisionTable is the precisions table in words, each with an example.
func precisionTable() []fact {
	var rows []fact
	for _, p := range precisions {
		rows = append(rows, fact{p.name, p.rule + ", e.g. " + p.q.with(p.example)})
	}
	return rows
}

func timing(r *Results) string {
	if r.Started.IsZero() {
		return "not recorded"
	}
	const layout = "2006-01-02 15:04:05 MST"
	if r.Finished.Before(r.Started) {
		return "started " + r.Started.Format(layout)
	}
	return fmt.Sprintf("started %s, finished %s (%s)", r.Started.Format(layout), r.Finished.Format(layout), r.Finished.Sub(r.Started).Round(time.Second))
}

// Sections, in the order of the findings.

func (f *figures) sections() []section {
	r := f.r
	fixed, scaled := filter(r.Runs, FixedLR), filter(r.Runs, LRScaling)
	sched, regime, noise := filter(r.Runs, Schedule), filter(r.Runs, Regime), filter(r.Runs, Noise)
	var s []section

	lossPlot, bin, err := f.trainLoss()
	s = append(s, newSection("fixed-lr", "Fixed learning rate", fixed,
		"Every batch size trains the same number of epochs at the same learning rate, so a larger batch makes proportionally fewer updates.",
		plotFigure("fixed-lr-train-loss", lossPlot, err, fmt.Sprintf("Training loss of every step against epochs, mean over seeds and averaged over bins of up to %d steps; one line per batch size. Compare the levels the lines reach by the last epoch.", bin)),
		figureOf("fixed-lr-test-loss", f.testLoss, "Test loss after each epoch, mean over seeds.")))

	acc := newSection("lr-scaling", "Scaling the learning rate with the batch", append(slices.Clone(fixed), scaled...),
		"The same sweep with the learning rate scaled from η₀ at B₀: the linear rule (Goyal et al. 2017) and the square-root rule (Hoffer et al. 2017), both warmed up over the first epochs.",
		figureOf("lr-scaling-accuracy", f.accuracy, accuracyCaption(r)))
	acc.Tables = append(acc.Tables, accuracyTable(r))
	if len(scaled) == 0 && len(fixed) > 0 {
		acc.Notes = append([]string{"The LR-scaling experiment was not run: only the fixed-LR line is shown."}, acc.Notes...)
	}
	s = append(s, acc)

	sc := newSection("schedule", "Increasing the batch instead of decaying the learning rate", sched,
		"Smith et al. 2018: a step schedule divides the learning rate at fixed epochs; increase-batch multiplies the batch size there instead, up to a cap; a constant learning rate is the control.",
		figureOf("schedule-accuracy", f.scheduleAccuracy, "Test accuracy after each epoch, mean over seeds in the band of their lowest to highest, one line per schedule; constant is the control without any decay."),
		figureOf("schedule-accuracy-updates", f.scheduleAccuracyByUpdates, "The same accuracies against the parameter updates made so far: the claim is the same accuracy with fewer updates, so increase-batch's line should end level with step decay's, further left."),
		figureOf("schedule-batch", f.scheduleBatch, "The batch size each schedule used in each epoch."),
		figureOf("schedule-updates", func() (*plot.Plot, error) { return f.updatesBars(Schedule) }, "Parameter updates over the whole run, per schedule. Read it with the accuracy plot: the claim is the same accuracy with fewer updates."))
	sc.Tables = append(sc.Tables, variantTable(sched, Schedule))
	s = append(s, sc)

	keskar := filter(r.Runs, Keskar)
	k := r.Preset.Keskar
	gen := newSection("generalization", "Generalization gap and sharpness, trained to the same training accuracy", keskar,
		fmt.Sprintf("Keskar et al. 2017: a small batch (SB, %d) against a large one (LB, %s of the %d training samples), both with Adam at the same learning rate, trained until the accuracy on the whole training set reaches %s (at most %d epochs); then test accuracy and the sharpness of the minimum. A run short of the target is not compared.",
			k.SmallBatch, share.with(k.LargeFraction), k.TrainSamples, accuracy.with(k.Target), k.MaxEpochs),
		figureOf("generalization-train", f.keskarTrain, "Accuracy on the epoch's training batches, mean over seeds in the band of their lowest to highest; the dashed line is the target, checked on the whole training set at each epoch's end. A run stops at its target, so later points average the seeds still training."),
		figureOf("generalization-accuracy", func() (*plot.Plot, error) { return f.finalAccuracy(Keskar) }, "Test accuracy (dots, mean ± std over seeds) and training accuracy (rings) of the final models; the distance between them is the generalization gap."),
		figureOf("generalization-sharpness", func() (*plot.Plot, error) {
			return f.byVariant(Keskar, "Sharpness φ of the final weights", "sharpness φ (%)", sharpness)
		}, fmt.Sprintf("Keskar's sharpness φ: the largest rise of the training loss, relative to 1 + loss and in percent, within a box of half-width ε(|w|+1) around the final weights (ε = %g), found by %d steps of projected gradient ascent, so a lower bound. Dot: mean over seeds; bar: their lowest to highest.", r.Preset.Sharpness.Epsilon, r.Preset.Sharpness.Steps)),
		figureOf("generalization-hessian", func() (*plot.Plot, error) {
			return f.byVariant(Keskar, "Top Hessian eigenvalue", "λ_max of the training loss's Hessian", hessianTop)
		}, fmt.Sprintf("The largest eigenvalue of the Hessian of the training loss at the final weights, by %d power iterations on Hessian-vector products (finite differences of gradients, %d samples). Higher is sharper.", r.Preset.Hessian.Iterations, r.Preset.Hessian.Samples)))
	gen.Tables = append(gen.Tables, keskarTable(keskar))
	s = append(s, gen)

	reg := newSection("regime", "Regime adaptation and ghost batch norm", regime,
		"Hoffer et al. 2017: the small batch (SB) in its regime (step decay, weight decay, batch norm) against the large batch (LB, sqrt-scaled LR) as is, with ghost batch normalization (GBN), and with regime adaptation (RA: as many updates as SB, the decay points at the same updates).",
		figureOf("regime-accuracy", func() (*plot.Plot, error) { return f.finalAccuracy(Regime) }, "Final test accuracy (dots, mean ± std over seeds) and the final model's train accuracy (rings) per variant; the distance between them is the generalization gap."),
		figureOf("regime-updates", func() (*plot.Plot, error) { return f.updatesBars(Regime) }, "Parameter updates over the whole run, per variant."))
	reg.Tables = append(reg.Tables, variantTable(regime, Regime))
	s = append(s, reg)

	costRuns := filter(r.Runs, Cost)
	cost := newSection("cost", "Time to an accuracy", costRuns,
		fmt.Sprintf("What a user pays: the wall time of the training passes until the test accuracy, checked at each epoch's end, first reaches %s (at most %d epochs), by batch size, with the %s LR rule. Every batch size ran with the same seeds, interleaved, so the comparison is paired by seed.",
			accuracy.with(r.Preset.Cost.Target), r.Preset.Cost.MaxEpochs, orDefault(string(r.Preset.Cost.Rule), "none")),
		figureOf("cost-time-to-accuracy", f.timeToTarget, "Seconds of training until the target, per seed (grey dashed lines: one seed across batch sizes, the pairs the verdict compares) and their mean in the band of the lowest to highest seed; log–log axes."),
		figureOf("cost-split", f.costSplit, "The time to the target split by device events: forward and backward, optimizer update, loading and host→device copies; mean over the runs that reached it."),
		figureOf("cost-counts", f.counts, "Parameter updates and separate host→device copies per epoch. Each update pays a step's fixed costs (a launch, a copy's latency) once; the bytes copied per epoch are the same at every batch size (the table), so fewer copies is not less data."))
	cost.Tables = append(cost.Tables, costTable(costRuns))
	s = append(s, cost)

	noisePlot, hidden, err := f.noise()
	caption := fmt.Sprintf("B_simple = tr(Σ)/|G|², estimated from gradients at batches %d and %d, against the updates made so far: mean over the noise runs' seeds in the band of their lowest to highest. Dashed lines mark the batch sizes of the sweep; the black line is B_crit from the S(B) fit, its 95 %% interval shaded; rings mark B_simple where each run's training loss reached the fit's target, the value the rule compares with B_crit.", r.Preset.NoiseSmall, r.Preset.NoiseBig)
	if hidden > 0 {
		caption += fmt.Sprintf(" %s not shown: the estimate was not yet finite and positive.", count(hidden, "point"))
	}
	ns := newSection("noise", "Gradient noise scale and the critical batch", noise,
		"McCandlish et al. 2018: the gradient noise scale B_simple, measured during runs at the base batch, against the critical batch B_crit fitted to the updates the sweeps needed to reach a common training loss.",
		plotFigure("noise-b-simple", noisePlot, err, caption),
		figureOf("noise-critical-batch", f.criticalBatch, criticalCaption(r)))
	ns.Tables = append(ns.Tables, noiseTable(r))
	if g := r.Grid; g != nil && !ns.NotRun {
		// The grid the verdict reads (its own report, with CSV and JSON, is in grid/).
		ns.Figures = append(ns.Figures,
			figureOf("grid-steps", g.StepsPlot, fmt.Sprintf("The plan's grid (bench/grid; its runs and report in %s/): steps S(B) to each training-loss target at the best of the grid's LRs per batch size, the seeds' range as bars, the fit S(B) = S_min(1 + B_crit/B) dashed.", gridDir)),
			figureOf("grid-critical-batch", func() (*plot.Plot, error) {
				p, err := g.BCritPlot()
				if p != nil {
					snapLog(&p.X) // a few close targets would be labelled with every digit
				}
				return p, err
			}, fmt.Sprintf("The grid's B_crit against the loss target with its %.0f %% bootstrap interval over seeds, beside Zhang et al.'s B_20 %% and the noise scale B_simple measured where the noise runs reached each target: the comparison the verdict reads.", 100*g.Level)))
	}
	s = append(s, ns)
	for i := range s { // a table fills the cell beside an odd figure out
		for j := range s[i].Tables {
			s[i].Tables[j].Wide = (len(s[i].Figures)+j)%2 == 0
		}
	}
	return s
}

func newSection(id, title string, runs []Run, intro string, figs ...figure) section {
	s := section{ID: id, Title: title, Intro: intro, NotRun: len(runs) == 0}
	if s.NotRun {
		return s
	}
	s.Figures, s.Settings, s.Notes = figs, settings(runs), problems(runs)
	if seeds := seedsOf(runs); len(seeds) == 1 {
		s.Notes = append(s.Notes, fmt.Sprintf("One seed (%d): the plots have no bands and the findings no intervals; a verdict needs more.", seeds[0]))
	}
	s.NotesRule = "Diverged and failed runs are left out of the means and bands and marked × on the plots, at the edge of the healthy runs' range."
	return s
}

func figureOf(name string, draw func() (*plot.Plot, error), caption string) figure {
	p, err := draw()
	return plotFigure(name, p, err, caption)
}

func plotFigure(name string, p *plot.Plot, err error, caption string) figure {
	if err == nil && p != nil {
		var svg string
		if svg, err = plotkit.InlineSVG(p); err == nil {
			return figure{Name: name, SVG: template.HTML(svg), Caption: caption, plot: p}
		}
	}
	if err != nil {
		return figure{Missing: "This plot could not be drawn: " + err.Error()}
	}
	return figure{Missing: "No run of this experiment finished with numbers to plot: see the notes above."}
}

// settings describes the resolved configs of runs in words, one line per
// variant and set of identical settings.
func settings(runs []Run) []string {
	var lines []string
	for _, v := range variantsOf(runs) {
		var keys []string
		batches := map[string][]int{}
		for _, run := range withVariant(runs, v) {
			c := run.Config
			if c.Epochs == 0 {
				continue // never resolved: the run failed before training
			}
			k := fmt.Sprintf("%d epochs, lr %s, momentum %g", c.Epochs, learningRate.format(c.LR), c.Momentum)
			if run.Protocol.Kind != "" {
				k = run.Protocol.String() + "; " + k
			}
			if sum := c.ScheduleSummary(); sum != "" {
				k += "; " + sum
			}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
			if !slices.Contains(batches[k], run.Batch) {
				batches[k] = append(batches[k], run.Batch)
			}
		}
		for _, k := range keys {
			slices.Sort(batches[k])
			lines = append(lines, fmt.Sprintf("%s, B = %s: %s", v, joinInts(batches[k], ", "), k))
		}
	}
	return lines
}

// problems lists the runs left out of the means, and why, and those that
// did not reach their protocol's target.
func problems(runs []Run) []string {
	var notes []string
	for _, run := range runs {
		name := fmt.Sprintf("%s, B=%d, seed %d", run.Variant, run.Batch, run.Seed)
		switch {
		case run.Diverged:
			notes = append(notes, fmt.Sprintf("Diverged: %s, in epoch %d.", name, divergedIn(run)))
		case run.Error != "":
			notes = append(notes, fmt.Sprintf("Failed: %s: %s", name, run.Error))
		case failure(run) != "":
			notes = append(notes, fmt.Sprintf("Failed: %s: %s.", name, failure(run)))
		case !run.Converged():
			notes = append(notes, fmt.Sprintf("Not converged: %s did not reach %s.", name, run.Protocol))
		}
	}
	return notes
}

// divergedIn is the epoch in which a diverged run's loss stopped being
// finite: the first recorded epoch with a non-finite loss, or else the one
// after the last recorded (the runner keeps only finished epochs).
func divergedIn(run Run) int {
	for i, e := range run.Epochs {
		bad := !plotkit.Finite(e.TrainLoss)
		for _, l := range e.StepLosses {
			bad = bad || !plotkit.Finite(float64(l))
		}
		if bad {
			return i + 1
		}
	}
	return len(run.Epochs) + 1
}

func accuracyCaption(r *Results) string {
	c := "Final test accuracy against batch size (log scale), the mean over seeds in the band of their lowest to highest: at a fixed learning rate, and with the learning rate scaled by each rule. Where a rule works, its line stays level while the fixed-LR line falls; the dashed horizontal line is the margin a rule must stay within to keep a batch size."
	if _, ok := fitCriticalBatch(r.Runs); ok {
		c += " The dashed vertical line is the critical batch B_crit of the S(B) fit (the noise-scale section)."
	}
	return c
}

// Tables: the exact numbers behind the plots.

// pm formats a stat of quantity q as mean ± std.
func pm(s stat, q quantity) string {
	if !s.ok() {
		return "—"
	}
	if s.n == 1 || s.std == 0 {
		return q.format(s.mean)
	}
	return q.format(s.mean) + " ± " + q.format(s.std)
}

func accuracyTable(r *Results) table {
	bs := batchesOf(append(filter(r.Runs, FixedLR), filter(r.Runs, LRScaling)...))
	t := table{Head: []string{"test accuracy (%)"}}
	for _, b := range bs {
		t.Head = append(t.Head, fmt.Sprintf("B=%d", b))
	}
	for _, exp := range []string{FixedLR, LRScaling} {
		runs := filter(r.Runs, exp)
		for _, v := range variantsOf(runs) {
			row := []string{exp + ": " + v}
			for _, b := range bs {
				row = append(row, pm(measure(runs, exp, v, b, testAcc), accuracy))
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

func variantTable(runs []Run, exp string) table {
	t := table{Head: []string{"variant", "batch", "epochs", "total updates", "test accuracy (%)", "train accuracy (%)"}}
	for _, v := range variantsOf(runs) {
		rs := withVariant(runs, v)
		batch, epochs := "—", "—"
		for _, run := range rs {
			if healthy(run) {
				first, last := run.Epochs[0].Batch, run.Final().Batch
				batch = strconv.Itoa(first)
				if last != first {
					batch += " → " + strconv.Itoa(last)
				}
				epochs = strconv.Itoa(len(run.Epochs))
				break
			}
		}
		t.Rows = append(t.Rows, []string{v, batch, epochs, pm(measure(runs, exp, v, 0, updates), countQ),
			pm(measure(runs, exp, v, 0, testAcc), accuracy), pm(measure(runs, exp, v, 0, trainAcc), accuracy)})
	}
	return t
}

// keskarTable is each Keskar run at its end: where it reached the target
// training accuracy, and what it measured there.
func keskarTable(runs []Run) table {
	t := table{Head: []string{"run", "batch", "target reached", "train accuracy (%)", "test accuracy (%)", "gap (points)", "sharpness φ (%)", "λ_max"}}
	for _, run := range runs {
		reached := "—"
		switch {
		case failure(run) != "":
			reached = "failed"
		case run.Reached != nil:
			reached = fmt.Sprintf("epoch %d", run.Reached.Epoch)
		case run.Protocol.HasTarget():
			reached = fmt.Sprintf("no, in %d epochs", len(run.Epochs))
		}
		cell := func(metric func(Run) (float64, bool), q quantity) string {
			if v, ok := metric(run); ok && len(run.Epochs) > 0 {
				return q.format(v)
			}
			return "—"
		}
		t.Rows = append(t.Rows, []string{fmt.Sprintf("%s, seed %d", run.Variant, run.Seed), strconv.Itoa(run.Batch), reached,
			cell(trainAcc, accuracy), cell(testAcc, accuracy), cell(gap, points), cell(sharpness, sharpnessQ), cell(hessianTop, general)})
	}
	return t
}

// costTable is the time-to-accuracy runs by batch size: how many reached
// the target, after how much, and the copies and bytes per epoch (not the
// same thing: a larger batch makes fewer copies of the same bytes).
func costTable(runs []Run) table {
	t := table{Head: []string{"batch", "reached", "epochs", "updates", "seconds to target", "transfer / compute / update (s)", "H2D copies / epoch", "H2D MB / epoch"}}
	for _, b := range batchesOf(runs) {
		at := withBatch(runs, b)
		var reached []*Reached
		for _, run := range at {
			if counted(run) && run.Reached != nil {
				reached = append(reached, run.Reached)
			}
		}
		of := func(get func(*Reached) float64, q quantity) string {
			var vs []float64
			for _, r := range reached {
				vs = append(vs, get(r))
			}
			return pm(statOf(vs), q)
		}
		perEpoch := func(get func(engine.EpochStats) float64, q quantity) string {
			var vs []float64
			for _, run := range at {
				for _, e := range run.Epochs {
					vs = append(vs, get(e))
				}
			}
			if m, ok := meanOf(vs); ok {
				return q.format(m)
			}
			return "—"
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(b), fmt.Sprintf("%d of %d", len(reached), len(at)),
			of(func(r *Reached) float64 { return float64(r.Epoch) }, countQ),
			of(func(r *Reached) float64 { return float64(r.Updates) }, countQ),
			of(func(r *Reached) float64 { return r.Seconds }, secondsQ),
			of(func(r *Reached) float64 { return r.TransferSeconds }, secondsQ) + " / " + of(func(r *Reached) float64 { return r.ComputeSeconds }, secondsQ) + " / " + of(func(r *Reached) float64 { return r.UpdateSeconds }, secondsQ),
			perEpoch(func(e engine.EpochStats) float64 { return float64(e.H2DCopies) }, countQ),
			perEpoch(func(e engine.EpochStats) float64 { return float64(e.H2DBytes) / 1e6 }, megabytes)})
	}
	return t
}

// statOf is the mean and standard deviation of xs, as measure gives them.
func statOf(xs []float64) stat {
	var s stat
	s.n = len(xs)
	if s.n == 0 {
		return s
	}
	m, _ := meanOf(xs)
	s.mean = m
	for _, x := range xs {
		s.std += (x - m) * (x - m)
	}
	if s.n > 1 {
		s.std = math.Sqrt(s.std / float64(s.n-1))
	}
	return s
}

// criticalCaption says what the S(B) plot shows and B_crit with its
// interval, as the noise-scale finding has it.
func criticalCaption(r *Results) string {
	c := "The updates S(B) each batch size needed until its smoothed training loss reached the target (the loss the largest batch's best run ends at), the best of the fixed-LR and scaled sweeps, mean over seeds; the grey curve is the least-squares fit S(B) = S_min(1 + B_crit/B) (McCandlish et al. 2018)."
	for _, fd := range r.Findings {
		if iv, ok := fd.Intervals["b_crit"]; ok {
			c += " B_crit = " + intervalText(batchQ, iv) + "."
		}
	}
	return c
}

// noiseTable is each noise run's B_simple where its training loss reached
// the S(B) fit's target (what the noise-scale rule reads) and at its end.
func noiseTable(r *Results) table {
	fit, fitted := fitCriticalBatch(r.Runs)
	t := table{Head: []string{"run", "estimates", "B_simple at the target loss", "after updates", "B_simple at the end", "|G|² at the end", "tr(Σ) at the end"}}
	for _, run := range filter(r.Runs, Noise) {
		row := []string{fmt.Sprintf("B=%d, seed %d", run.Batch, run.Seed), strconv.Itoa(len(run.Noise)), "—", "—", "—", "—", "—"}
		if pt, ok := bSimpleAt(run, fit.target); fitted && ok {
			row[2], row[3] = batchQ.format(pt.BSimple), strconv.Itoa(pt.Updates)
		}
		if n := len(run.Noise); n > 0 {
			pt := run.Noise[n-1]
			row[4], row[5], row[6] = batchQ.format(pt.BSimple), general.format(pt.GradSq), general.format(pt.TraceSigma)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
