package study

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"maps"
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
	Device             string
	Preset             []fact
	Timing             string
	Files              []string
}

type verdictCount struct {
	Verdict, Class string
	N              int
}

type findingRow struct {
	Claim, Source, Measured, Verdict, Class string
	Numbers                                 []fact
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

// figure is a plot with its caption, or the reason there is none.
type figure struct {
	SVG     template.HTML
	Caption string
	Missing string
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

func renderPage(r *Results) ([]byte, error) {
	f := newFigures(r)
	p := page{
		Title:    "batchlab: what batch size changes",
		Summary:  summary(r),
		Verdicts: verdictCounts(r),
		Sections: f.sections(),
		Device:   "not recorded",
		Preset:   presetFacts(r.Preset),
		Timing:   timing(r),
		Files:    []string{resultsFile, runsFile, findingsFile},
		Missing:  r.Missing, Undecided: r.Undecided,
	}
	if r.Device.Kind != "" {
		p.Device = r.Device.String()
	}
	for _, fd := range r.Findings {
		row := findingRow{Claim: fd.Claim, Source: fd.Source, Measured: fd.Measured, Verdict: fd.Verdict, Class: verdictClass(fd.Verdict)}
		for _, k := range slices.Sorted(maps.Keys(fd.Numbers)) {
			row.Numbers = append(row.Numbers, fact{k, strconv.FormatFloat(fd.Numbers[k], 'g', 4, 64)})
		}
		p.Findings = append(p.Findings, row)
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return buf.Bytes(), nil
}

// summary says what was run and how the verdicts came out, in numbers only:
// the conclusions are the findings'.
func summary(r *Results) string {
	var b strings.Builder
	if len(r.Runs) == 0 {
		b.WriteString("The study recorded no runs, so every experiment below says “not run”.")
	} else {
		var div, failed int
		var seconds float64
		for _, run := range r.Runs {
			seconds += run.Seconds
			switch {
			case run.Diverged:
				div++
			case run.Error != "":
				failed++
			}
		}
		fmt.Fprintf(&b, "The %s study trained %d runs of %s on %s, seeds %s, in %s of training",
			orDefault(r.Preset.Name, "batch-size"), len(r.Runs), r.Preset.modelName(), samples(r.Preset), joinSeeds(r.Preset.Seeds),
			time.Duration(seconds*float64(time.Second)).Round(time.Second))
		if div+failed == 0 {
			b.WriteString("; every run finished.")
		} else {
			fmt.Fprintf(&b, "; %d diverged and %d failed, each listed in its section.", div, failed)
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

func presetFacts(p Preset) []fact {
	decay := "none"
	if len(p.DecayEpochs) > 0 {
		decay = fmt.Sprintf("×%g after epochs %s", p.DecayFactor, joinInts(p.DecayEpochs, ", "))
	}
	return []fact{
		{"preset", orDefault(p.Name, "unnamed")},
		{"seeds", joinSeeds(p.Seeds)},
		{"data", samples(p)},
		{"model", p.modelName()},
		{"batch sizes", joinInts(p.Batches, ", ")},
		{"base batch B₀, LR η₀", fmt.Sprintf("%d, %g (momentum %g)", p.BaseBatch, p.BaseLR, p.Momentum)},
		{"epochs", fmt.Sprintf("%d (sweeps), %d (schedules), warmup %g", p.Epochs, p.ScheduleEpochs, p.WarmupEpochs)},
		{"schedule decay", decay},
		{"large batch, ghost batch", fmt.Sprintf("%d, %d", p.LargeBatch, p.GhostBatch)},
		{"sharpness", fmt.Sprintf("ε %g, %d samples, %d ascent steps", p.Sharpness.Epsilon, p.Sharpness.Samples, p.Sharpness.Steps)},
		{"noise scale", fmt.Sprintf("batches %d and %d, %d measurements per point", p.NoiseSmall, p.NoiseBig, p.NoiseSamples)},
	}
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

// Sections, in the order of DESIGN.md's findings.

func (f *figures) sections() []section {
	r := f.r
	fixed, scaled := filter(r.Runs, FixedLR), filter(r.Runs, LRScaling)
	sched, regime, noise := filter(r.Runs, Schedule), filter(r.Runs, Regime), filter(r.Runs, Noise)
	var s []section

	lossPlot, bin, err := f.trainLoss()
	s = append(s, newSection("fixed-lr", "Fixed learning rate", fixed,
		"Every batch size trains the same number of epochs at the same learning rate, so a larger batch makes proportionally fewer updates.",
		plotFigure(lossPlot, err, fmt.Sprintf("Training loss of every step against epochs, mean over seeds and averaged over bins of up to %d steps; one line per batch size. Compare the levels the lines reach by the last epoch.", bin)),
		figureOf(f.testLoss, "Test loss after each epoch, mean over seeds.")))

	acc := newSection("lr-scaling", "Scaling the learning rate with the batch", append(slices.Clone(fixed), scaled...),
		"The same sweep with the learning rate scaled from η₀ at B₀: the linear rule (Goyal et al. 2017) and the square-root rule (Hoffer et al. 2017), both warmed up over the first epochs.",
		figureOf(f.accuracy, accuracyCaption(r)))
	acc.Tables = append(acc.Tables, accuracyTable(r))
	if len(scaled) == 0 && len(fixed) > 0 {
		acc.Notes = append([]string{"The LR-scaling experiment was not run: only the fixed-LR line is shown."}, acc.Notes...)
	}
	s = append(s, acc)

	sc := newSection("schedule", "Increasing the batch instead of decaying the learning rate", sched,
		"A step schedule divides the learning rate at fixed epochs; increase-batch multiplies the batch size there instead, up to a cap (Smith et al. 2018).",
		figureOf(f.scheduleAccuracy, "Test accuracy after each epoch, mean over seeds, one line per schedule."),
		figureOf(f.scheduleBatch, "The batch size each schedule used in each epoch."),
		figureOf(func() (*plot.Plot, error) { return f.updatesBars(Schedule) }, "Parameter updates over the whole run, per schedule. Read it with the accuracy plot: the claim is the same accuracy with fewer updates."))
	sc.Tables = append(sc.Tables, variantTable(sched, Schedule))
	s = append(s, sc)

	gen := newSection("generalization", "Generalization gap and sharpness", fixed,
		"At the end of the fixed-LR sweep: how far train accuracy is above test accuracy, and how sharp the minimum is (Keskar et al. 2017).",
		figureOf(f.gap, "Train accuracy of the final model on the whole training set minus its test accuracy, in percentage points, mean ± std over seeds."),
		figureOf(f.sharpness, fmt.Sprintf("Keskar's sharpness φ: the largest rise of the training loss, relative to 1 + loss and in percent, within a box of half-width ε(|w|+1) around the final weights (ε = %g), found by %d steps of projected gradient ascent, so a lower bound. Higher is sharper.", r.Preset.Sharpness.Epsilon, r.Preset.Sharpness.Steps)))
	gen.Tables = append(gen.Tables, generalizationTable(fixed))
	gen.Settings = nil // the fixed-LR section lists them
	s = append(s, gen)

	reg := newSection("regime", "Regime adaptation and ghost batch norm", regime,
		"Small batch (SB) against large batch (LB) as is, with ghost batch normalization (GBN), and with regime adaptation (RA: trained B/B₀ times the epochs so the number of updates matches) (Hoffer et al. 2017).",
		figureOf(f.regimeAccuracy, "Final test accuracy (dots, mean ± std over seeds) and the final model's train accuracy (rings) per variant; the distance between them is the generalization gap."),
		figureOf(func() (*plot.Plot, error) { return f.updatesBars(Regime) }, "Parameter updates over the whole run, per variant."))
	reg.Tables = append(reg.Tables, variantTable(regime, Regime))
	s = append(s, reg)

	cost := newSection("cost", "What an epoch costs", fixed,
		"Per-epoch cost of the fixed-LR sweep, on log–log axes: every recorded epoch counts, those of diverged runs included.",
		figureOf(f.counts, "Parameter updates and separate host→device copies per epoch. Each update pays the fixed costs of a step (a launch, a copy's latency) once."),
		figureOf(f.seconds, "Wall time of an epoch's training pass and its split by device events: load and host→device copy, forward and backward, optimizer update. Mean over seeds and epochs."))
	cost.Tables = append(cost.Tables, costTable(fixed))
	cost.Settings = nil
	cost.NotesRule = "The epochs these runs recorded count here: they ran, and cost what they cost."
	s = append(s, cost)

	noisePlot, hidden, err := f.noise()
	caption := fmt.Sprintf("B_simple = tr(Σ)/|G|², estimated from gradients at batches %d and %d, against the updates made so far; one line per run. Dashed lines mark the batch sizes of the sweep. McCandlish et al. predict that batches beyond B_simple bring diminishing returns.", r.Preset.NoiseSmall, r.Preset.NoiseBig)
	if hidden > 0 {
		caption += fmt.Sprintf(" %s not shown: the estimate was not yet finite and positive.", count(hidden, "point"))
	}
	ns := newSection("noise", "Gradient noise scale", noise,
		"The gradient noise scale measured during a run at the base batch (McCandlish et al. 2018), to set against the sweep.",
		plotFigure(noisePlot, err, caption))
	ns.Tables = append(ns.Tables, noiseTable(noise))
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
	s.NotesRule = "Diverged and failed runs are left out of the means; diverged ones are marked × on the plots."
	return s
}

func figureOf(draw func() (*plot.Plot, error), caption string) figure {
	p, err := draw()
	return plotFigure(p, err, caption)
}

func plotFigure(p *plot.Plot, err error, caption string) figure {
	if err == nil && p != nil {
		var svg string
		if svg, err = plotkit.InlineSVG(p); err == nil {
			return figure{SVG: template.HTML(svg), Caption: caption}
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
			k := fmt.Sprintf("%d epochs, lr %g, momentum %g", c.Epochs, c.LR, c.Momentum)
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

// problems lists the diverged and the failed runs.
func problems(runs []Run) []string {
	var notes []string
	for _, run := range runs {
		name := fmt.Sprintf("%s, B=%d, seed %d", run.Variant, run.Batch, run.Seed)
		switch {
		case run.Diverged:
			notes = append(notes, fmt.Sprintf("Diverged: %s, in epoch %d.", name, divergedIn(run)))
		case run.Error != "":
			notes = append(notes, fmt.Sprintf("Failed: %s: %s", name, run.Error))
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
	c := "Final test accuracy against batch size (log scale), mean ± std over seeds: at a fixed learning rate, and with the learning rate scaled by each rule. Where a rule works, its line stays level while the fixed-LR line falls."
	if _, ok := finalBSimple(r); ok {
		c += " The dashed vertical line is the gradient noise scale B_simple at the end of the noise run."
	}
	return c
}

// Tables: the exact numbers behind the plots.

// pm formats a stat, times scale, as mean ± std.
func pm(s stat, scale float64, prec int) string {
	if !s.ok() {
		return "—"
	}
	if s.n == 1 || s.std == 0 {
		return strconv.FormatFloat(scale*s.mean, 'f', prec, 64)
	}
	return fmt.Sprintf("%.*f ± %.*f", prec, scale*s.mean, prec, scale*s.std)
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
				row = append(row, pm(measure(runs, exp, v, b, testAcc), 100, 2))
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
		t.Rows = append(t.Rows, []string{v, batch, epochs, pm(measure(runs, exp, v, 0, updates), 1, 0),
			pm(measure(runs, exp, v, 0, testAcc), 100, 2), pm(measure(runs, exp, v, 0, trainAcc), 100, 2)})
	}
	return t
}

func generalizationTable(fixed []Run) table {
	t := table{Head: []string{"batch", "train accuracy (%)", "test accuracy (%)", "gap (points)", "sharpness φ"}}
	for _, v := range variantsOf(fixed) {
		for _, b := range batchesOf(withVariant(fixed, v)) {
			t.Rows = append(t.Rows, []string{strconv.Itoa(b),
				pm(measure(fixed, FixedLR, v, b, trainAcc), 100, 2), pm(measure(fixed, FixedLR, v, b, testAcc), 100, 2),
				pm(measure(fixed, FixedLR, v, b, gap), 100, 2), pm(measure(fixed, FixedLR, v, b, sharpness), 1, 3)})
		}
	}
	return t
}

func costTable(fixed []Run) table {
	t := table{Head: []string{"batch", "updates / epoch", "H2D copies / epoch", "H2D MB / epoch", "seconds / epoch", "samples / s"}}
	for _, b := range batchesOf(fixed) {
		mean := func(of func(engine.EpochStats) float64, format string) string {
			var vs []float64
			for _, run := range withBatch(fixed, b) {
				for _, e := range run.Epochs {
					vs = append(vs, of(e))
				}
			}
			if m, ok := meanOf(vs); ok {
				return fmt.Sprintf(format, m)
			}
			return "—"
		}
		t.Rows = append(t.Rows, []string{strconv.Itoa(b),
			mean(func(e engine.EpochStats) float64 { return float64(e.Updates) }, "%.0f"),
			mean(func(e engine.EpochStats) float64 { return float64(e.H2DCopies) }, "%.0f"),
			mean(func(e engine.EpochStats) float64 { return float64(e.H2DBytes) / 1e6 }, "%.1f"),
			mean(func(e engine.EpochStats) float64 { return e.Seconds }, "%.3g"),
			mean(func(e engine.EpochStats) float64 { return e.SamplesPerSec }, "%.0f")})
	}
	return t
}

func noiseTable(noise []Run) table {
	t := table{Head: []string{"run", "estimates", "last B_simple", "|G|²", "tr(Σ)", "after updates"}}
	for _, run := range noise {
		row := []string{fmt.Sprintf("B=%d, seed %d", run.Batch, run.Seed), strconv.Itoa(len(run.Noise)), "—", "—", "—", "—"}
		if n := len(run.Noise); n > 0 {
			pt := run.Noise[n-1]
			row[2], row[3], row[4], row[5] = fmt.Sprintf("%.4g", pt.BSimple), fmt.Sprintf("%.4g", pt.GradSq), fmt.Sprintf("%.4g", pt.TraceSigma), strconv.Itoa(pt.Updates)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
