// Package transfer answers what moving a batch to the device costs as the
// batch size grows, per transfer strategy (data.Strategy): it times the
// host→device load of each batch size (Measure, and BenchmarkH2D in the
// package's tests) and fits the cost model below. `batchlab bench
// transfer` prints, saves and plots its Report.
//
// The transfer model. Moving a batch of B samples costs
//
//	t(B) = α + bytes(B)/β
//
// a fixed cost per batch α (driver calls, synchronization, kernel launches:
// everything that does not grow with the batch) and a per-byte cost at an
// effective bandwidth β. An epoch of N samples moves ⌈N/B⌉ batches, so it
// costs α·⌈N/B⌉ + N·bytes/β: the second term does not depend on B, the
// first falls as 1/B. That first term is what larger batches remove.
package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/batchlab/batchlab/bench/internal/spread"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// PowersOfTwo returns 1, 2, 4, … up to max.
func PowersOfTwo(max int) []int {
	var bs []int
	for b := 1; b <= max; b *= 2 {
		bs = append(bs, b)
	}
	return bs
}

// Config is a sweep of batch sizes and transfer strategies.
type Config struct {
	Device     device.Device
	Data       *data.Dataset // the samples moved; at least the largest batch
	Samples    int           // N of the per-epoch split; 0: Data.Len()
	Batches    []int
	Strategies []data.Strategy
	Repeats    int           // measurements per point, interleaved; the median and range are reported
	MinTime    time.Duration // one measurement repeats the batch for at least this long
	Trace      *trace.Timeline
	Progress   func(done, total int) // after each point; may be nil
}

// Point is the measured cost of one batch size under one strategy.
type Point struct {
	Strategy    string    `json:"strategy"`
	Mode        string    `json:"mode"`
	DType       string    `json:"dtype"`
	Batch       int       `json:"batch"`
	Bytes       int64     `json:"bytes"`        // host→device per batch
	Copies      int       `json:"copies"`       // per batch
	Seconds     float64   `json:"seconds"`      // median time per batch
	MinSeconds  float64   `json:"min_seconds"`  // the range of the repeats: every other
	MaxSeconds  float64   `json:"max_seconds"`  // figure's range follows from it
	Runs        []float64 `json:"seconds_runs"` // time per batch of each repeat, in the order measured
	Loads       int       `json:"loads"`        // batches timed per measurement
	NsPerSample float64   `json:"ns_per_sample"`
	GBPerSec    float64   `json:"gb_per_s"` // Bytes / Seconds, 1 GB = 1e9 bytes

	// One epoch of Samples at this batch size: ⌈N/B⌉ batches, the measured
	// cost (batches × Seconds) and the fit's two terms.
	EpochBatches       int     `json:"epoch_batches"`
	EpochSeconds       float64 `json:"epoch_seconds"`
	EpochAlphaSeconds  float64 `json:"epoch_alpha_seconds"`     // α·⌈N/B⌉
	EpochBandwidthSecs float64 `json:"epoch_bandwidth_seconds"` // N·bytes per sample/β
}

// Fit is t(B) = α + bytes(B)/β fitted to one strategy's points.
type Fit struct {
	Strategy string  `json:"strategy"`
	Alpha    float64 `json:"alpha_seconds"`
	Beta     float64 `json:"beta_bytes_per_s"`
	R2       float64 `json:"r2"`
	Points   int     `json:"points"`
	// The fit of each repeat alone (its times at every batch size):
	// the range says how far the machine's noise moves α and β.
	AlphaSpread spread.Spread `json:"alpha_seconds_spread"`
	BetaSpread  spread.Spread `json:"beta_bytes_per_s_spread"`
}

// Report is a sweep's result.
type Report struct {
	Date     string      `json:"date"`
	Device   device.Info `json:"device"`
	Dataset  string      `json:"dataset"`
	Samples  int         `json:"samples"`  // N of the per-epoch split
	Features int         `json:"features"` // pixels per sample
	Repeats  int         `json:"repeats"`
	MinTime  float64     `json:"min_seconds_per_measurement"`
	Points   []Point     `json:"points"`
	Fits     []Fit       `json:"fits"` // empty with fewer than two batch sizes
	// Warnings say where the repeats spread enough to change a reading.
	Warnings []string `json:"warnings"`
}

// Measure runs the sweep: for each strategy and batch size it loads
// batches of random samples (Load, then Sync) and reports the median time
// per batch over Repeats measurements, with their range. The repeats are
// interleaved: each round measures every point once, so that a slow spell
// of a shared machine spreads over all points instead of biasing one. A
// batch is measured alone, with no compute to overlap, so pinned-async
// costs what pinned does here; its overlap shows in bench/epoch.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Samples == 0 {
		cfg.Samples = cfg.Data.Len()
	}
	if cfg.Repeats <= 0 {
		return nil, fmt.Errorf("repeats must be positive, got %d", cfg.Repeats)
	}
	if len(cfg.Batches) == 0 || len(cfg.Strategies) == 0 {
		return nil, errors.New("nothing to measure: no batch sizes or no strategies")
	}
	for _, b := range cfg.Batches {
		if b <= 0 || b > cfg.Data.Len() {
			return nil, fmt.Errorf("batch size %d is outside 1..%d (the samples of %s)", b, cfg.Data.Len(), cfg.Data.Name)
		}
	}
	r := &Report{
		Date: time.Now().Format(time.DateOnly), Device: cfg.Device.Info(), Dataset: cfg.Data.Name,
		Samples: cfg.Samples, Features: cfg.Data.Features(), Repeats: cfg.Repeats, MinTime: cfg.MinTime.Seconds(),
	}
	maxRows := slices.Max(cfg.Batches)
	var cells []*cell
	for _, s := range cfg.Strategies {
		l, err := data.NewLoader(cfg.Device, cfg.Data, maxRows, s)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		for _, b := range cfg.Batches {
			c := &cell{cfg: cfg, l: l, b: b, order: data.Permutation(cfg.Data.Len(), 1, b)}
			if err := c.calibrate(); err != nil {
				return nil, fmt.Errorf("%s, batch %d: %w", s, b, err)
			}
			cells = append(cells, c)
		}
	}
	done, total := 0, len(cells)*cfg.Repeats
	for range cfg.Repeats {
		for _, c := range cells {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := c.measure(); err != nil {
				return nil, fmt.Errorf("%s, batch %d: %w", c.l.Strategy(), c.b, err)
			}
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, total)
			}
		}
	}
	for _, c := range cells {
		if err := c.trace(); err != nil {
			return nil, err
		}
		r.Points = append(r.Points, c.point())
	}
	r.fit()
	r.warn()
	return r, nil
}

// cell is one point of the sweep, a strategy and a batch size, while it
// is measured.
type cell struct {
	cfg   Config
	l     data.Loader
	b     int
	order []int32
	pos   int
	loads int       // batches per measurement
	runs  []float64 // seconds per batch, one per measurement
}

// load moves the next batch and waits for it.
func (c *cell) load() error {
	if c.pos+c.b > len(c.order) {
		c.pos = 0
	}
	if _, _, err := c.l.Load(c.order[c.pos : c.pos+c.b]); err != nil {
		return err
	}
	c.pos += c.b
	return c.cfg.Device.Sync()
}

// calibrate warms the buffers up with two loads and times a third to size
// a measurement: enough loads to last MinTime.
func (c *cell) calibrate() error {
	for range 2 {
		if err := c.load(); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := c.load(); err != nil {
		return err
	}
	c.loads = int(min(max(c.cfg.MinTime.Seconds()/max(time.Since(start).Seconds(), 1e-9), 1), 1e6))
	return nil
}

// measure takes one measurement: loads batches in a row.
func (c *cell) measure() error {
	start := time.Now()
	for range c.loads {
		if err := c.load(); err != nil {
			return err
		}
	}
	c.runs = append(c.runs, time.Since(start).Seconds()/float64(c.loads))
	return nil
}

// trace records one more load, traced, so that the trace stays small.
func (c *cell) trace() error {
	tl := c.cfg.Trace
	if tl == nil {
		return nil
	}
	c.l.Trace(tl)
	m := tl.Mark()
	err := c.load()
	c.l.Trace(nil)
	if err != nil {
		return err
	}
	tl.Span(trace.Steps, fmt.Sprintf("load %s batch=%d", c.l.Strategy(), c.b), m, tl.Mark(), nil)
	return tl.Flush()
}

// point is the cell's result: the median and range of its measurements.
func (c *cell) point() Point {
	s, b := c.l.Strategy(), c.b
	bytes, copies := s.BatchTraffic(b, c.cfg.Data.Features())
	sp := spread.Of(c.runs)
	batches := (c.cfg.Samples + b - 1) / b
	return Point{
		Strategy: s.String(), Mode: string(s.Mode), DType: s.DType.String(), Batch: b,
		Bytes: bytes, Copies: copies, Seconds: sp.Median, MinSeconds: sp.Min, MaxSeconds: sp.Max, Runs: c.runs,
		Loads: c.loads, NsPerSample: sp.Median * 1e9 / float64(b), GBPerSec: float64(bytes) / sp.Median / 1e9,
		EpochBatches: batches, EpochSeconds: float64(batches) * sp.Median,
	}
}

// fit fits every strategy's points and splits each point's epoch into the
// fit's two terms.
func (r *Report) fit() {
	var order []string
	by := map[string][]int{}
	for i, p := range r.Points {
		if _, ok := by[p.Strategy]; !ok {
			order = append(order, p.Strategy)
		}
		by[p.Strategy] = append(by[p.Strategy], i)
	}
	for _, name := range order {
		var bytes, secs []float64
		for _, i := range by[name] {
			bytes = append(bytes, float64(r.Points[i].Bytes))
			secs = append(secs, r.Points[i].Seconds)
		}
		alpha, beta, r2, err := fitLine(bytes, secs)
		if err != nil {
			continue
		}
		f := Fit{Strategy: name, Alpha: alpha, Beta: beta, R2: r2, Points: len(bytes)}
		var alphas, betas []float64
		for rep := range len(r.Points[by[name][0]].Runs) {
			secs = secs[:0]
			for _, i := range by[name] {
				secs = append(secs, r.Points[i].Runs[rep])
			}
			if a, b, _, err := fitLine(bytes, secs); err == nil {
				alphas, betas = append(alphas, a), append(betas, b)
			}
		}
		f.AlphaSpread, f.BetaSpread = spread.Of(alphas), spread.Of(betas)
		r.Fits = append(r.Fits, f)
		for _, i := range by[name] {
			p := &r.Points[i]
			p.EpochAlphaSeconds = alpha * float64(p.EpochBatches)
			p.EpochBandwidthSecs = float64(p.Bytes) / float64(p.Batch) * float64(r.Samples) / beta
		}
	}
}

// Noise limits above which a reading is flagged: a point whose repeats
// spread over more than a quarter of its median, a fit whose α over the
// repeats spans more than its median (a factor of about 2 and beyond; for
// an α near 0, more than a tenth of the smallest batch's time) or whose β
// spans more than a quarter.
const (
	noisyPoint = 0.25
	noisyAlpha = 1.0
	noisyBeta  = 0.25
)

// warn lists the readings the machine's noise could change.
func (r *Report) warn() {
	r.Warnings = []string{} // [] in JSON when there is nothing to warn of
	var noisy []Point
	for _, p := range r.Points {
		if (p.MaxSeconds-p.MinSeconds)/p.Seconds > noisyPoint {
			noisy = append(noisy, p)
		}
	}
	if len(noisy) > 0 {
		worst := slices.MaxFunc(noisy, func(a, b Point) int {
			return cmp.Compare((a.MaxSeconds-a.MinSeconds)/a.Seconds, (b.MaxSeconds-b.MinSeconds)/b.Seconds)
		})
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d points spread over more than %.0f%% of their median (worst: %s at B=%d, %s per sample): "+
			"the machine was busy; neighbouring batch sizes may be in the wrong order. Rerun with more --repeats or a longer --min-time, on a quieter machine",
			len(noisy), len(r.Points), 100*noisyPoint, worst.Strategy, worst.Batch, humanSpread(spreadOf(worst).Scale(1/float64(worst.Batch)))))
	}
	for _, f := range r.Fits {
		// An α near 0 (a host copy) is "unresolved" by any noise: its
		// range counts once it exceeds a tenth of the smallest batch's
		// time, where α matters most.
		smallest, _ := r.point(f.Strategy, r.batches()[0])
		if f.AlphaSpread.N > 1 && (f.AlphaSpread.Max-f.AlphaSpread.Min) > noisyAlpha*max(f.Alpha, 0.1*smallest.Seconds) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: α ranges %s–%s over the repeats' own fits (the medians' fit: %s): the fixed cost is not resolved",
				f.Strategy, human(f.AlphaSpread.Min), human(f.AlphaSpread.Max), human(f.Alpha)))
		}
		if f.BetaSpread.N > 1 && (f.BetaSpread.Max-f.BetaSpread.Min) > noisyBeta*f.Beta {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: β ranges %.3g–%.3g GB/s over the repeats' own fits (the medians' fit: %.3g GB/s)",
				f.Strategy, f.BetaSpread.Min/1e9, f.BetaSpread.Max/1e9, f.Beta/1e9))
		}
	}
}

// spreadOf is a point's time per batch, median and range.
func spreadOf(p Point) spread.Spread {
	return spread.Spread{Median: p.Seconds, Min: p.MinSeconds, Max: p.MaxSeconds, N: len(p.Runs)}
}

// fitLine fits t = α + bytes/β by least squares on relative residuals
// (weights 1/t²): the times span four orders of magnitude, and unweighted
// the largest batches alone would decide α. α is held non-negative, and R²
// is the weighted one.
func fitLine(bytes, seconds []float64) (alpha, beta, r2 float64, err error) {
	if len(bytes) != len(seconds) {
		return 0, 0, 0, fmt.Errorf("fit: %d byte counts for %d times", len(bytes), len(seconds))
	}
	if len(slices.Compact(slices.Sorted(slices.Values(bytes)))) < 2 {
		return 0, 0, 0, errors.New("fit: needs at least two different batch sizes")
	}
	w := make([]float64, len(seconds))
	for i, t := range seconds {
		if !(t > 0) {
			return 0, 0, 0, fmt.Errorf("fit: time %g is not positive", t)
		}
		w[i] = 1 / (t * t)
	}
	alpha, slope := stat.LinearRegression(bytes, seconds, w, false)
	if alpha < 0 { // a fixed cost cannot be negative: the best fit with α ≥ 0 has α = 0
		alpha, slope = stat.LinearRegression(bytes, seconds, w, true)
	}
	if !(slope > 0) {
		return 0, 0, 0, fmt.Errorf("fit: time does not grow with bytes (slope %g)", slope)
	}
	return alpha, 1 / slope, stat.RSquared(bytes, seconds, w, alpha, slope), nil
}

// Fit returns the fit of a strategy, if there is one.
func (r *Report) Fit(strategy string) (Fit, bool) {
	for _, f := range r.Fits {
		if f.Strategy == strategy {
			return f, true
		}
	}
	return Fit{}, false
}

// strategies lists the report's strategies in the order measured.
func (r *Report) strategies() []string {
	var names []string
	for _, p := range r.Points {
		if !slices.Contains(names, p.Strategy) {
			names = append(names, p.Strategy)
		}
	}
	return names
}

// batches lists the report's batch sizes, ascending.
func (r *Report) batches() []int {
	var bs []int
	for _, p := range r.Points {
		bs = append(bs, p.Batch)
	}
	slices.Sort(bs)
	return slices.Compact(bs)
}

func (r *Report) point(strategy string, batch int) (Point, bool) {
	for _, p := range r.Points {
		if p.Strategy == strategy && p.Batch == batch {
			return p, true
		}
	}
	return Point{}, false
}
