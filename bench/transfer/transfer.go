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
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"

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
	Repeats    int           // measurements per point, of which the median is reported
	MinTime    time.Duration // one measurement repeats the batch for at least this long
	Trace      *trace.Timeline
	Progress   func(done, total int) // after each point; may be nil
}

// Point is the measured cost of one batch size under one strategy.
type Point struct {
	Strategy    string  `json:"strategy"`
	Mode        string  `json:"mode"`
	DType       string  `json:"dtype"`
	Batch       int     `json:"batch"`
	Bytes       int64   `json:"bytes"`   // host→device per batch
	Copies      int     `json:"copies"`  // per batch
	Seconds     float64 `json:"seconds"` // median time per batch
	MinSeconds  float64 `json:"min_seconds"`
	MaxSeconds  float64 `json:"max_seconds"`
	Loads       int     `json:"loads"` // batches timed per measurement
	NsPerSample float64 `json:"ns_per_sample"`
	GBPerSec    float64 `json:"gb_per_s"` // Bytes / Seconds, 1 GB = 1e9 bytes

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
}

// Measure runs the sweep: for each strategy and batch size it loads
// batches of random samples (Load, then Sync) and reports the median time
// per batch over Repeats measurements. A batch is measured alone, with no
// compute to overlap, so pinned-async costs what pinned does here; its
// overlap shows in bench/epoch.
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
	done, total := 0, len(cfg.Batches)*len(cfg.Strategies)
	for _, s := range cfg.Strategies {
		l, err := data.NewLoader(cfg.Device, cfg.Data, maxRows, s)
		if err != nil {
			return nil, err
		}
		for _, b := range cfg.Batches {
			if err := ctx.Err(); err != nil {
				l.Close()
				return nil, err
			}
			p, err := measure(cfg, l, b)
			if err != nil {
				l.Close()
				return nil, fmt.Errorf("%s, batch %d: %w", s, b, err)
			}
			r.Points = append(r.Points, p)
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, total)
			}
		}
		l.Close()
	}
	r.fit()
	return r, nil
}

// measure times batches of b samples through l.
func measure(cfg Config, l data.Loader, b int) (Point, error) {
	d, s := cfg.Device, l.Strategy()
	order := data.Permutation(cfg.Data.Len(), 1, b)
	pos := 0
	load := func() error {
		if pos+b > len(order) {
			pos = 0
		}
		if _, _, err := l.Load(order[pos : pos+b]); err != nil {
			return err
		}
		pos += b
		return d.Sync()
	}
	// Two loads warm the buffers up; the third sizes a measurement.
	for range 2 {
		if err := load(); err != nil {
			return Point{}, err
		}
	}
	start := time.Now()
	if err := load(); err != nil {
		return Point{}, err
	}
	loads := int(min(max(cfg.MinTime.Seconds()/max(time.Since(start).Seconds(), 1e-9), 1), 1e6))
	samples := make([]float64, cfg.Repeats)
	for i := range samples {
		start := time.Now()
		for range loads {
			if err := load(); err != nil {
				return Point{}, err
			}
		}
		samples[i] = time.Since(start).Seconds() / float64(loads)
	}
	if tl := cfg.Trace; tl != nil { // one more load, traced, so the trace stays small
		l.Trace(tl)
		m := tl.Mark()
		err := load()
		l.Trace(nil)
		if err != nil {
			return Point{}, err
		}
		tl.Span(trace.Steps, fmt.Sprintf("load %s batch=%d", s, b), m, tl.Mark(), nil)
		if err := tl.Flush(); err != nil {
			return Point{}, err
		}
	}
	bytes, copies := s.BatchTraffic(b, cfg.Data.Features())
	med := median(samples)
	batches := (cfg.Samples + b - 1) / b
	return Point{
		Strategy: s.String(), Mode: string(s.Mode), DType: s.DType.String(), Batch: b,
		Bytes: bytes, Copies: copies, Seconds: med, MinSeconds: slices.Min(samples), MaxSeconds: slices.Max(samples),
		Loads: loads, NsPerSample: med * 1e9 / float64(b), GBPerSec: float64(bytes) / med / 1e9,
		EpochBatches: batches, EpochSeconds: float64(batches) * med,
	}, nil
}

func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
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
		r.Fits = append(r.Fits, Fit{Strategy: name, Alpha: alpha, Beta: beta, R2: r2, Points: len(bytes)})
		for _, i := range by[name] {
			p := &r.Points[i]
			p.EpochAlphaSeconds = alpha * float64(p.EpochBatches)
			p.EpochBandwidthSecs = float64(p.Bytes) / float64(p.Batch) * float64(r.Samples) / beta
		}
	}
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
