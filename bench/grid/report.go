package grid

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Report analyses the grid in dir from whatever runs it holds and writes
// grid.json, points.csv, fits.csv, runs.csv, noise.csv and the plots there.
func Report(dir string) (*Analysis, error) {
	a, runs, err := load(dir)
	if err != nil {
		return nil, err
	}
	p := a.Plan
	if err := runstore.Save(filepath.Join(dir, "grid.json"), a, runstore.Indented); err != nil {
		return nil, err
	}
	for name, rows := range map[string][][]string{
		"points.csv": a.pointRows(), "fits.csv": a.fitRows(), "runs.csv": runRows(p, runs), "noise.csv": a.noiseRows(),
	} {
		if err := writeCSV(filepath.Join(dir, name), rows); err != nil {
			return nil, err
		}
	}
	if err := a.Plots(dir); err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	return a, nil
}

// Load analyses the grid in dir from whatever runs it holds, writing
// nothing.
func Load(dir string) (*Analysis, error) {
	a, _, err := load(dir)
	return a, err
}

func load(dir string) (*Analysis, []Run, error) {
	p, err := ReadPlan(dir)
	if err != nil {
		return nil, nil, err
	}
	runs, missing := ReadRuns(dir, p)
	if len(runs) == 0 {
		return nil, nil, fmt.Errorf("%s holds no finished runs yet", dir)
	}
	return Analyze(p, runs, missing), runs, nil
}

func writeCSV(path string, rows [][]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.WriteAll(rows); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
}

// f formats a number for CSV: empty when not finite.
func f(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

func (a *Analysis) optimizer() string { return a.Plan.OptimizerName() }

// OptimizerName is the plan's optimizer as --optimizer names it.
func (p Plan) OptimizerName() string {
	if p.Optimizer.IsAdam() {
		return string(p.Optimizer)
	}
	return "sgd"
}

func (a *Analysis) pointRows() [][]string {
	rows := [][]string{{"optimizer", "target", "batch", "reached", "best_lr", "lr_at_grid_edge", "steps_mean", "steps_lo", "steps_hi", "steps_min", "steps_max",
		"samples_mean", "samples_min", "samples_max", "seeds", "failed_lrs"}}
	for _, t := range a.Targets {
		for _, pt := range t.Points {
			row := make([]string, len(rows[0]))
			row[0], row[1], row[2], row[3] = a.optimizer(), f(t.Target), strconv.Itoa(pt.Batch), strconv.FormatBool(pt.Reached)
			if pt.Reached {
				row[4], row[5] = f(*pt.BestLR), strconv.FormatBool(pt.LREdge)
				row[6], row[7], row[8], row[9], row[10] = f(pt.Steps.Mean), f(float64(pt.StepsLo)), f(float64(pt.StepsHi)), f(pt.Steps.Min), f(pt.Steps.Max)
				row[11], row[12], row[13], row[14] = f(pt.Samples.Mean), f(pt.Samples.Min), f(pt.Samples.Max), strconv.Itoa(pt.Steps.N)
			}
			var failed []string
			for _, lr := range pt.FailedLRs {
				failed = append(failed, f(lr))
			}
			row[15] = strings.Join(failed, " ")
			rows = append(rows, row)
		}
	}
	return rows
}

func (a *Analysis) fitRows() [][]string {
	rows := [][]string{{"optimizer", "target", "batches_fitted", "s_min", "s_min_lo", "s_min_hi", "e_min", "b_crit", "b_crit_lo", "b_crit_hi",
		"b_crit_at_bound", "rms_log", "b20", "b20_lo", "b20_hi", "b20_above_range", "b20_reference_batch", "b_simple", "b_simple_lo", "b_simple_hi",
		"noise_pairs", "ratio_b_simple_b_crit", "ratio_lo", "ratio_hi", "ratio_class"}}
	for _, t := range a.Targets {
		row := make([]string, len(rows[0]))
		row[0], row[1] = a.optimizer(), f(t.Target)
		n := 0
		for _, pt := range t.Points {
			if pt.Reached {
				n++
			}
		}
		row[2] = strconv.Itoa(n)
		if r := t.Fit; r != nil {
			copy(row[3:], []string{f(r.SMin), f(float64(r.SMinLo)), f(float64(r.SMinHi)), f(r.EMin), f(r.BCrit), f(float64(r.BCritLo)), f(float64(r.BCritHi)),
				strconv.FormatBool(r.AtBound), f(r.RMSLog), f(r.B20), f(float64(r.B20Lo)), f(float64(r.B20Hi)), strconv.FormatBool(r.B20Above), strconv.Itoa(r.B20Ref)})
		}
		if n := t.Noise; n != nil {
			copy(row[17:], []string{f(float64(n.BSimple)), f(float64(n.Lo)), f(float64(n.Hi)), strconv.Itoa(n.Pairs)})
		}
		if c := t.Comparison; c != nil {
			copy(row[21:], []string{f(c.Ratio), f(float64(c.RatioLo)), f(float64(c.RatioHi)), c.Class})
		}
		rows = append(rows, row)
	}
	return rows
}

func runRows(p Plan, runs []Run) [][]string {
	head := []string{"id", "kind", "batch", "lr", "seed", "epochs", "updates", "initial_loss", "diverged", "collapsed", "error", "seconds"}
	for _, t := range p.Targets {
		head = append(head, "steps_to_"+f(t), "samples_to_"+f(t))
	}
	rows := [][]string{head}
	for _, r := range runs {
		row := []string{r.ID, r.Kind, strconv.Itoa(r.Batch), f(r.LR), strconv.FormatUint(r.Seed, 10), strconv.Itoa(r.Epochs), strconv.Itoa(r.Updates),
			f(r.InitialLoss), strconv.FormatBool(r.Diverged), strconv.FormatBool(r.Collapsed), r.Error, f(r.Seconds)}
		for _, h := range r.Hits {
			if h.Reached {
				row = append(row, strconv.Itoa(*h.Steps), strconv.Itoa(*h.Samples))
			} else {
				row = append(row, "", "") // not reached: no number
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func (a *Analysis) noiseRows() [][]string {
	rows := [][]string{{"optimizer", "step", "smoothed_loss", "b_simple", "pairs"}}
	for _, s := range a.NoiseAlongTraining {
		rows = append(rows, []string{a.optimizer(), strconv.Itoa(s.Step), f(float64(s.Loss)), f(float64(s.BSimple)), strconv.Itoa(s.Pairs)})
	}
	return rows
}

// Print writes the analysis as a few tables.
func (a *Analysis) Print(w io.Writer) {
	p := a.Plan
	fmt.Fprintf(w, "grid: %s, %v hidden, %d train samples (0: all), batches %v, seeds %v, %d runs (%d failed: diverged or collapsed)",
		a.optimizer(), p.Hidden, p.TrainSamples, p.Batches, p.Seeds, a.Runs, a.Failed)
	if len(a.Missing) > 0 {
		fmt.Fprintf(w, "; PARTIAL: %d runs missing", len(a.Missing))
	}
	fmt.Fprintf(w, "\ndevice %s; intervals %.0f %%: the fit's by a bootstrap over seeds (%d draws, seed %d; expanded percentiles for few seeds), the best LR picked again in each draw; a batch's S(B) by Student's t over its seeds at its best LR\n",
		a.Device, 100*a.Level, a.BootstrapDraws, a.BootstrapSeed)
	for _, t := range a.Targets {
		fmt.Fprintf(w, "\ntarget: smoothed training loss %g\n%7s %10s %26s %16s %13s %6s\n", t.Target, "batch", "best lr", "steps S(B) [90 % interval]", "seeds' range", "samples E(B)", "seeds")
		for _, pt := range t.Points {
			if len(pt.Seeds) == 0 {
				fmt.Fprintf(w, "%7d %10s\n", pt.Batch, "runs not all done yet")
				continue
			}
			if !pt.Reached {
				fmt.Fprintf(w, "%7d %10s\n", pt.Batch, "not reached")
				continue
			}
			edge := " "
			if pt.LREdge {
				edge = "*"
			}
			fmt.Fprintf(w, "%7d %9.4g%s %8.0f [%6s, %6s]     %6.0f – %6.0f %13.0f %6d\n", pt.Batch, *pt.BestLR, edge,
				pt.Steps.Mean, hiText(pt.StepsLo), hiText(pt.StepsHi), pt.Steps.Min, pt.Steps.Max, pt.Samples.Mean, pt.Steps.N)
		}
		if r := t.Fit; r != nil {
			bound := ""
			if r.AtBound {
				bound = " (at the search bound: not located by these batches)"
			}
			fmt.Fprintf(w, "  fit S(B) = S_min(1 + B_crit/B): S_min = %.0f [%.0f, %.0f], B_crit = %.0f [%.0f, %.0f]%s, E_min = %.0f, rms(ln S) %.3f\n",
				r.SMin, r.SMinLo, r.SMinHi, r.BCrit, r.BCritLo, r.BCritHi, bound, r.EMin, r.RMSLog)
			above := ""
			if r.B20Above {
				above = " (beyond the batches measured)"
			}
			fmt.Fprintf(w, "  Zhang et al.'s B_20%% (E 20%% over linear scaling from B=%d): %.0f [%.0f, %s]%s\n", r.B20Ref, r.B20, r.B20Lo, hiText(r.B20Hi), above)
		} else {
			fmt.Fprintf(w, "  no fit: fewer than 3 batch sizes reached it\n")
		}
		if n := t.Noise; n != nil {
			fmt.Fprintf(w, "  noise scale there: B_simple = %s [%s, %s] (%d pairs, %d seeds)", hiText(n.BSimple), hiText(n.Lo), hiText(n.Hi), n.Pairs, n.Seeds)
			if c := t.Comparison; c != nil {
				fmt.Fprintf(w, "; B_simple/B_crit = %.3g [%.3g, %.3g]: %s", c.Ratio, c.RatioLo, c.RatioHi, c.Class)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "\n* the best LR is at the edge of the grid: a better one may lie outside it")
}

func hiText(x Num) string {
	if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
		return "∞"
	}
	return strconv.FormatFloat(float64(x), 'f', 0, 64)
}
