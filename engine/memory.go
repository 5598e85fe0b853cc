package engine

import (
	"bufio"
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// The memory plan. A run's buffers are all allocated up front, and their
// sizes follow from the Config and the shape of the data alone, so the
// footprint is computed before anything is allocated and a run that would
// not fit is refused with one line instead of dying in the Go runtime's
// out-of-memory (or a kernel's OOM kill) part-way through allocating.
// The arithmetic saturates at math.MaxInt64 instead of wrapping: a width of
// 2⁶³-1 gives a footprint larger than any budget, not a negative one.

// Footprint is what a run allocates, in bytes, by part.
type Footprint struct {
	Parameters  int64 // weights, gradients and optimizer state (velocities, Adam's moments); batch-norm statistics
	Activations int64 // layer outputs and input gradients for the largest batch, the loss gradient, per-step results
	Batches     int64 // the loaders' device buffers (with resident, the whole data sets)
	Host        int64 // host memory: the loaders' staging, the checkpoint's copy of the state
}

// Device is the part that lives on the device.
func (f Footprint) Device() int64 { return satAdd(f.Parameters, f.Activations, f.Batches) }

// Total is the whole footprint: on the CPU device, device and host memory are the same RAM.
func (f Footprint) Total() int64 { return satAdd(f.Device(), f.Host) }

func (f Footprint) plus(g Footprint) Footprint {
	return Footprint{satAdd(f.Parameters, g.Parameters), satAdd(f.Activations, g.Activations), satAdd(f.Batches, g.Batches), satAdd(f.Host, g.Host)}
}

func (f Footprint) String() string {
	return fmt.Sprintf("%s (parameters and optimizer state %s, activations %s, batches %s, host copies %s)",
		FormatBytes(f.Total()), FormatBytes(f.Parameters), FormatBytes(f.Activations), FormatBytes(f.Batches), FormatBytes(f.Host))
}

// satMul multiplies non-negative counts, saturating at math.MaxInt64.
func satMul(xs ...int) int64 {
	r := uint64(1)
	for _, x := range xs {
		if x < 0 {
			return math.MaxInt64
		}
		hi, lo := bits.Mul64(r, uint64(x))
		if hi != 0 || lo > math.MaxInt64 {
			return math.MaxInt64
		}
		r = lo
	}
	return int64(r)
}

// satAdd adds non-negative byte counts, saturating at math.MaxInt64.
func satAdd(xs ...int64) int64 {
	var r int64
	for _, x := range xs {
		if x > math.MaxInt64-r {
			return math.MaxInt64
		}
		r += x
	}
	return r
}

// FormatBytes writes n bytes in binary units, e.g. "29.3 GiB".
func FormatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "more than 8 EiB"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v, i = v/1024, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// Shape is what the footprint needs to know of the data.
type Shape struct {
	Features, Classes int
	Train, Test       int // samples
}

// ShapeOf is the shape of a training and a test set.
func ShapeOf(train, test *data.Dataset) Shape {
	return Shape{Features: train.Features(), Classes: train.Classes, Train: train.Len(), Test: test.Len()}
}

// PlanMemory is the footprint of a trainer for cfg, which Validate accepted,
// on data of this shape: it mirrors what NewTrainer, newMLP and
// data.NewLoader allocate (TestPlanMemoryMatchesAllocations holds them to it).
func PlanMemory(cfg Config, s Shape) Footprint {
	cfg = cfg.Resolved()
	return planRows(cfg, s, cfg.maxBatchSize(), cfg.EvalBatch)
}

// planRows is the footprint with training batches of up to trainRows rows
// and evaluation batches of evalRows.
func planRows(cfg Config, s Shape, trainRows, evalRows int) Footprint {
	maxRows := max(trainRows, evalRows)
	a, err := cfg.arch(s.Features, s.Classes)
	if err != nil { // NewTrainer and CheckMemory refuse such a run first
		return Footprint{Parameters: math.MaxInt64}
	}
	f, state := a.plan(maxRows, cfg.Optimizer.IsAdam())
	// The loss gradient, the per-step losses and correct counts, and the
	// divergence guard.
	b := min(cfg.batchAt(1), trainRows)
	steps := max(ceilDiv(s.Train, b), ceilDiv(max(s.Train, s.Test), evalRows))
	f.Activations = satAdd(f.Activations, satMul(4, maxRows, s.Classes), satMul(8, steps), 4)
	f.Host = satAdd(mul64(4, state), satMul(4, ceilDiv(s.Train, b))) // and the losses Partial reads
	return f.plus(loaderFootprint(cfg.Transfer, trainRows, s.Features, s.Train)).plus(loaderFootprint(cfg.Transfer, evalRows, s.Features, s.Test))
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func mul64(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// paramBytes is the footprint of a trainable tensor of n floats: value,
// gradient, velocity (Adam's m) and, with Adam, v; and the floats of it a
// checkpoint copies (the value and the optimizer state).
func paramBytes(n int64, adam bool) (bytes, state int64) {
	if adam {
		return mul64(16, n), mul64(3, n)
	}
	return mul64(12, n), mul64(2, n)
}

// normPlan adds a batch normalization of features channels over pixels
// positions to f and state (see batchNorm.buffers).
func normPlan(f *Footprint, state *int64, features, pixels, maxRows, ghost int, adam bool) {
	p, st := paramBytes(satMul(2, features), adam) // γ and β
	stats := satMul(4, 2, features)                // running mean and variance
	f.Parameters = satAdd(f.Parameters, p, stats)
	*state = satAdd(*state, st, satMul(2, features))
	l := &batchNorm{Features: features, Pixels: pixels, Ghost: ghost}
	f.Activations = satAdd(f.Activations, bufferBytes(l.buffers(maxRows))-stats)
}

func (a mlpArch) plan(maxRows int, adam bool) (f Footprint, state int64) {
	widths := a.Widths
	for i := 1; i < len(widths); i++ {
		in, out := widths[i-1], widths[i]
		p, st := paramBytes(satAdd(satMul(in, out), int64(out)), adam)
		f.Parameters, state = satAdd(f.Parameters, p), satAdd(state, st)
		f.Activations = satAdd(f.Activations, satMul(4, maxRows, out))
		if i > 1 {
			f.Activations = satAdd(f.Activations, satMul(4, maxRows, in))
		}
		if i < len(widths)-1 && (a.BatchNorm || a.GhostBatch > 0) {
			normPlan(&f, &state, out, 1, maxRows, a.GhostBatch, adam)
		}
	}
	return f, state
}

func (a mlpArch) paramCount() int64 {
	var n int64
	for i := 1; i < len(a.Widths); i++ {
		n = satAdd(n, satMul(a.Widths[i-1], a.Widths[i]), int64(a.Widths[i]))
	}
	return n
}

// plan mirrors newCNN through the layers' own buffer lists.
func (a cnnArch) plan(maxRows int, adam bool) (f Footprint, state int64) {
	convs, flat := a.stageShapes(maxRows)
	for i, s := range convs {
		filters := a.Convs[i].Filters
		p, st := paramBytes(satAdd(satMul(filters, s.ColRows()), int64(filters)), adam)
		f.Parameters, state = satAdd(f.Parameters, p), satAdd(state, st)
		f.Activations = satAdd(f.Activations, bufferBytes((&conv2d{S: s, F: filters, InputGrad: i > 0}).buffers()))
		oh, ow := s.OutH(), s.OutW()
		if a.BatchNorm {
			normPlan(&f, &state, filters, oh*ow, maxRows, a.GhostBatch, adam)
		}
		pool := &maxPool{S: device.PoolShape{N: maxRows, C: filters, H: oh, W: ow, K: poolSize, Stride: poolSize}}
		f.Activations = satAdd(f.Activations, bufferBytes(pool.buffers()))
	}
	channels := a.Convs[len(convs)-1].Filters
	f.Activations = satAdd(f.Activations, bufferBytes((&flatten{C: channels, Pixels: flat / channels}).buffers(maxRows)))
	widths := append(append([]int{flat}, a.Hidden...), a.Classes)
	for i := 1; i < len(widths); i++ {
		in, out := widths[i-1], widths[i]
		p, st := paramBytes(satAdd(satMul(in, out), int64(out)), adam)
		f.Parameters, state = satAdd(f.Parameters, p), satAdd(state, st)
		f.Activations = satAdd(f.Activations, satMul(4, maxRows, out), satMul(4, maxRows, in))
	}
	return f, state
}

func (a cnnArch) paramCount() int64 {
	convs, flat := a.stageShapes(1)
	var n int64
	for i, s := range convs {
		n = satAdd(n, satMul(a.Convs[i].Filters, s.ColRows()), int64(a.Convs[i].Filters))
	}
	widths := append(append([]int{flat}, a.Hidden...), a.Classes)
	for i := 1; i < len(widths); i++ {
		n = satAdd(n, satMul(widths[i-1], widths[i]), int64(widths[i]))
	}
	return n
}

// loaderFootprint mirrors data.NewLoader: per slot (two for pinned-async)
// the host staging of pixels and indices or labels, the device batch (and
// its uint8 form, or the indices of resident); resident also holds the whole
// data set of n samples on the device.
func loaderFootprint(s data.Strategy, rows, features, n int) Footprint {
	slots := 1
	if s.Mode == data.PinnedAsync {
		slots = 2
	}
	var f Footprint
	for range slots {
		if s.Mode != data.Resident {
			f.Host = satAdd(f.Host, satMul(rows, features, s.DType.Size()))
		}
		f.Host = satAdd(f.Host, satMul(4, rows))
		f.Batches = satAdd(f.Batches, satMul(4, rows, features), satMul(4, rows))
		if s.DType == device.Uint8 {
			f.Batches = satAdd(f.Batches, satMul(rows, features))
		}
		if s.Mode == data.Resident {
			f.Batches = satAdd(f.Batches, satMul(4, rows))
		}
	}
	if s.Mode == data.Resident {
		f.Batches = satAdd(f.Batches, satMul(n, features), satMul(4, n))
		f.Host = satAdd(f.Host, satMul(4, n)) // the labels widened for the upload
	}
	return f
}

// probeFootprint is what a Probe adds to a trainer whose model holds
// maxRows rows: its loader, loss slot and loss gradient, and the float64
// gradients the noise meter keeps on the host (a small, a big and a running
// sum of chunks).
func probeFootprint(cfg Config, s Shape, maxRows int) Footprint {
	f := loaderFootprint(cfg.Transfer, maxRows, s.Features, s.Train)
	f.Activations = satAdd(f.Activations, 4, satMul(4, maxRows, s.Classes))
	params := int64(math.MaxInt64)
	if a, err := cfg.arch(s.Features, s.Classes); err == nil {
		params = a.paramCount()
	}
	f.Host = satAdd(f.Host, mul64(3*8, params))
	return f
}

// MemoryBudget is the bytes a run on d may take: cfg.Memory when set,
// else the GPU's free memory, else half the RAM available now (the CPU
// device shares it with everything else on the machine). It says where the
// number comes from.
func MemoryBudget(cfg Config, d device.Device) (int64, string) {
	if cfg.Memory > 0 {
		return cfg.Memory, "set by --memory"
	}
	info := d.Info()
	if info.Kind != "cpu" && info.FreeMemory > 0 {
		return info.FreeMemory, "the GPU's free memory; --memory sets another"
	}
	return availableRAM(info.TotalMemory) / 2, "half the available RAM; --memory sets another"
}

// availableRAM is MemAvailable from /proc/meminfo, or total where the
// system has no such file.
func availableRAM(total int64) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return total
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return total
}

// CheckMemory refuses a run of cfg, which Validate accepted, on data of
// shape s whose footprint exceeds the budget on d (MemoryBudget): before
// anything is allocated, or even the data decoded. NewTrainer checks it too.
func CheckMemory(cfg Config, s Shape, d device.Device) error { return checkMemory(cfg, s, d, false) }

// checkMemory refuses a run whose footprint (f, or with the probe, f plus
// probe) exceeds the budget on d, naming the footprint, the budget and the
// largest batch that would fit. The error wraps device.ErrOutOfMemory.
func checkMemory(cfg Config, s Shape, d device.Device, withProbe bool) error {
	if _, err := cfg.arch(s.Features, s.Classes); err != nil {
		return err
	}
	budget, source := MemoryBudget(cfg, d)
	// A probe is made beside a trainer that has already allocated: a budget
	// measured now (free memory) has the trainer's share taken out, so only
	// the probe counts against it; --memory is a budget for both together.
	probeOnly := withProbe && cfg.Memory == 0
	cpu := d.Info().Kind == "cpu"
	r := cfg.Resolved()
	trainRows, evalRows := r.maxBatchSize(), r.EvalBatch
	need := func(rows int) (Footprint, int64) {
		f := planRows(r, s, min(trainRows, rows), min(evalRows, rows))
		if withProbe {
			p := probeFootprint(r, s, max(min(trainRows, rows), min(evalRows, rows)))
			if probeOnly {
				f = p
			} else {
				f = f.plus(p)
			}
		}
		if cpu {
			return f, f.Total()
		}
		return f, f.Device() // the GPU's budget is its memory; host staging is small beside it
	}
	f, n := need(max(trainRows, evalRows))
	if n <= budget {
		return nil
	}
	// The largest rows that fit (0: none), by bisection: the footprint
	// grows with the rows, lo always fits (or is 0), hi never does.
	lo, hi := 0, max(trainRows, evalRows)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if _, m := need(mid); m <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	var hint string
	switch {
	case lo == 0:
		hint = "not even a batch of 1 fits: narrow the model (--hidden, --model)"
	case evalRows > trainRows && lo >= trainRows:
		hint = fmt.Sprintf("the largest --eval-batch that fits is %d", lo)
	case evalRows > lo:
		hint = fmt.Sprintf("the largest batch that fits is %d (with --eval-batch at most that too)", lo)
	default:
		hint = fmt.Sprintf("the largest batch that fits is %d", lo)
	}
	what := "the run"
	switch {
	case probeOnly:
		what = "the gradient-noise probe"
	case withProbe:
		what = "the run and its gradient-noise probe"
	}
	return tooBig{fmt.Sprintf("%s needs %s, more than the memory budget of %s (%s); %s", what, f, FormatBytes(budget), source, hint)}
}

// tooBig is the memory plan's refusal: it is an out-of-memory (advise's
// search counts it as not fitting) that happened before any allocation.
type tooBig struct{ msg string }

func (e tooBig) Error() string        { return e.msg }
func (e tooBig) Is(target error) bool { return target == device.ErrOutOfMemory }
