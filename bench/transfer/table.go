package transfer

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/batchlab/batchlab/bench"
	"github.com/batchlab/batchlab/bench/internal/spread"
)

// unit is the unit that writes seconds s with three or so digits.
func unit(s float64) (scale float64, name, verb string) {
	switch a := max(s, -s); {
	case a < 1e-6:
		return 1e9, "ns", "%.0f"
	case a < 1e-3:
		return 1e6, "µs", "%.1f"
	case a < 1:
		return 1e3, "ms", "%.2f"
	}
	return 1, "s", "%.2f"
}

// human prints seconds with a unit that keeps three or so digits.
func human(s float64) string {
	scale, name, verb := unit(s)
	return fmt.Sprintf(verb, s*scale) + name
}

// humanSpread prints a time's median and range in the median's unit:
// "1.2µs [1.1–1.4]".
func humanSpread(s spread.Spread) string {
	scale, name, verb := unit(s.Median)
	return fmt.Sprintf(verb+"%s ["+verb+"–"+verb+"]", s.Median*scale, name, s.Min*scale, s.Max*scale)
}

// WriteTable prints the sweep: time per batch and per sample, the fit, and
// the per-epoch split.
func (r *Report) WriteTable(w io.Writer) error {
	names, batches := r.strategies(), r.batches()
	fmt.Fprintf(w, "host→device transfer on the %s\n", bench.DeviceLabel(r.Device))
	fmt.Fprintf(w, "%s · %s, %d pixels per sample · each point the median [min–max] of %d interleaved measurements of ≥ %s of batches\n",
		r.Date, r.Dataset, r.Features, r.Repeats, human(r.MinTime))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// grid prints a row per batch size and a column per strategy, after
	// the rows of first (a label and a cell per strategy).
	grid := func(title string, first func(name string) (string, string), cell func(Point) string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
		fmt.Fprint(tw, "batch\t")
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t", n)
		}
		fmt.Fprintln(tw)
		if first != nil {
			label, _ := first("")
			fmt.Fprintf(tw, "%s\t", label)
			for _, n := range names {
				_, c := first(n)
				fmt.Fprintf(tw, "%s\t", c)
			}
			fmt.Fprintln(tw)
		}
		for _, b := range batches {
			fmt.Fprintf(tw, "%d\t", b)
			for _, n := range names {
				if p, ok := r.point(n, b); ok {
					fmt.Fprintf(tw, "%s\t", cell(p))
				} else {
					fmt.Fprint(tw, "\t")
				}
			}
			fmt.Fprintln(tw)
		}
	}
	grid("time per batch", nil, func(p Point) string { return humanSpread(spreadOf(p)) })
	grid("time per sample", nil, func(p Point) string { return humanSpread(spreadOf(p).Scale(1 / float64(p.Batch))) })
	grid(fmt.Sprintf("transfer time per epoch of N = %d samples, measured: ⌈N/B⌉ × time per batch", r.Samples), nil,
		func(p Point) string { return humanSpread(spreadOf(p).Scale(float64(p.EpochBatches))) })
	tw.Flush()
	defer r.writeWarnings(w)
	if len(r.Fits) == 0 {
		fmt.Fprintln(w, "\n(no fit: it needs at least two batch sizes)")
		return nil
	}
	fmt.Fprintln(w, "\nfit t(B) = α + bytes(B)/β to the medians: least squares on relative error, α ≥ 0; in brackets the range of each repeat's own fit")
	fmt.Fprintln(tw, "strategy\tbytes/sample\tcopies/batch\tα\tβ GB/s\tR²\t")
	for _, f := range r.Fits {
		p, _ := r.point(f.Strategy, batches[0])
		a, b := f.AlphaSpread, f.BetaSpread.Scale(1e-9)
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%s [%s–%s]\t%.3g [%.3g–%.3g]\t%.4f\t\n", f.Strategy, float64(p.Bytes)/float64(p.Batch), p.Copies,
			human(f.Alpha), human(a.Min), human(a.Max), f.Beta/1e9, b.Min, b.Max, f.R2)
	}
	grid(fmt.Sprintf("transfer time per epoch of N = %d samples, the fit's terms: α·⌈N/B⌉ (by batch size) + N·bytes/β (first row: the same at every B)", r.Samples),
		func(name string) (string, string) {
			p, ok := r.point(name, batches[0])
			if _, fit := r.Fit(name); !ok || !fit {
				return "N·bytes/β", "-"
			}
			return "N·bytes/β", human(p.EpochBandwidthSecs)
		},
		func(p Point) string {
			if _, ok := r.Fit(p.Strategy); !ok {
				return "-"
			}
			return human(p.EpochAlphaSeconds)
		})
	return tw.Flush()
}

// writeWarnings prints the report's warnings, if any, after its tables.
func (r *Report) writeWarnings(w io.Writer) {
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warning)
	}
}

// WriteCSV writes one row per point, with its strategy's fit.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"device", "strategy", "mode", "dtype", "batch", "bytes", "copies", "seconds", "min_seconds", "max_seconds",
		"ns_per_sample", "gb_per_s", "alpha_seconds", "beta_bytes_per_s", "r2",
		"samples", "epoch_batches", "epoch_seconds", "epoch_alpha_seconds", "epoch_bandwidth_seconds"})
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, p := range r.Points {
		f, _ := r.Fit(p.Strategy)
		cw.Write([]string{r.Device.String(), p.Strategy, p.Mode, p.DType, strconv.Itoa(p.Batch), strconv.FormatInt(p.Bytes, 10),
			strconv.Itoa(p.Copies), g(p.Seconds), g(p.MinSeconds), g(p.MaxSeconds), g(p.NsPerSample), g(p.GBPerSec),
			g(f.Alpha), g(f.Beta), g(f.R2), strconv.Itoa(r.Samples), strconv.Itoa(p.EpochBatches), g(p.EpochSeconds),
			g(p.EpochAlphaSeconds), g(p.EpochBandwidthSecs)})
	}
	cw.Flush()
	return cw.Error()
}
