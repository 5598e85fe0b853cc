package device

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/batchlab/batchlab/engine/device/internal/vec"
)

// CPU is the device that is always there, and the one training on other
// devices is compared with. It is built for speed on a few cores: a blocked
// SGEMM, OpenBLAS's with -tags openblas or else package sgemm's
// with an AVX2+FMA micro-kernel (cpu_gemm.go); elementwise passes in AVX2
// assembly (package vec); large passes split across a fork-join pool of
// helper goroutines (cpu_pool.go); subnormals flushed to zero in the
// momentum update. The split depends on the shapes and GOMAXPROCS only, so
// a run repeats bit for bit, and training on it is deterministic for a
// seed. It is checked like every other device against package devicetest,
// whose float64 loops are the oracle; -tags purego swaps the assembly for
// plain Go.
//
// "Host↔device" copies are real memory copies into buffers the device owns,
// counted like any other device's, so the data-movement accounting is the
// same code on every device.
type CPU struct {
	firstError
	traffic Traffic

	// The passes split across goroutines: each call fills its task, so
	// that a call allocates nothing.
	passes passes
	tasks  struct {
		gemm         gemmTasks
		addBias      addBiasTask
		relu         reluTask
		reluBackward reluBackwardTask
		softmax      softmaxTask
		columnSum    columnSumTask
		momentum     momentumTask
		adam         adamTask
		normalize    normalizeTask
		conv         convTasks
	}
	// SoftmaxCrossEntropy's per-block losses and per-part errors, kept
	// between calls.
	softmaxScratch struct {
		blockLoss []float64
		badRow    []int
	}
}

// run runs the task *t in parts parts on the device's goroutines (see
// cpu_pool.go), then zeroes it: the device keeps no reference to buffers
// between calls.
func run[T any, P interface {
	*T
	task
}](d *CPU, parts int, t P) {
	d.passes.parallel(parts, t)
	*t = *new(T)
}

// NewCPU returns a CPU device.
func NewCPU() *CPU { return &CPU{} }

type cpuBuffer struct {
	bufferBase
	bytes []byte // the storage, 8-byte aligned
	f32   []float32
	u8    []uint8
	i32   []int32
}

func (d *CPU) Info() Info {
	// The SGEMM goes into the name: it is most of what the device costs.
	return Info{Kind: "cpu", Name: cpuModel() + ", " + CPUGemm + " SGEMM", TotalMemory: totalRAM(), Threads: workers()}
}

func (d *CPU) Alloc(t DType, n int) (Buffer, error) {
	size, err := allocBytes(t, n)
	if err != nil {
		return nil, err
	}
	// Go's runtime ends the program when it cannot allocate: what cannot
	// fit in RAM is refused here instead.
	if ram := machineRAM(); ram > 0 && size > ram {
		return nil, fmt.Errorf("Alloc: %d bytes asked, more than the machine's %d bytes of RAM: %w", size, ram, ErrOutOfMemory)
	}
	words := make([]uint64, (size+7)/8) // uint64 backing keeps float32 views aligned
	b := &cpuBuffer{bufferBase: bufferBase{owner: d, dtype: t, n: n}}
	if len(words) > 0 {
		b.bytes = unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
	}
	switch t {
	case Float32:
		b.f32 = unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b.bytes))), n)
	case Uint8:
		b.u8 = b.bytes
	case Int32:
		b.i32 = unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(b.bytes))), n)
	}
	return b, nil
}

// Free releases b, dropping the device's hold on its memory; it ignores a
// buffer that is not one of this device's live buffers.
func (d *CPU) Free(b Buffer) {
	if cb, err := own[*cpuBuffer]("Free", "CPU", d, b); err == nil {
		cb.bytes, cb.f32, cb.u8, cb.i32, cb.freed = nil, nil, nil, nil, true
	}
}

// own returns b as this device's live buffer.
func (d *CPU) own(op string, b Buffer) (*cpuBuffer, error) { return own[*cpuBuffer](op, "CPU", d, b) }

func (d *CPU) CopyIn(dst Buffer, src []byte) error {
	b, err := ownCopy[*cpuBuffer]("CopyIn", "CPU", d, dst, len(src))
	if err != nil {
		return err
	}
	copy(b.bytes, src)
	d.traffic.copiedIn(len(src))
	return nil
}

func (d *CPU) CopyOut(dst []byte, src Buffer) error {
	b, err := ownCopy[*cpuBuffer]("CopyOut", "CPU", d, src, len(dst))
	if err != nil {
		return err
	}
	copy(dst, b.bytes)
	d.traffic.copiedOut(len(dst))
	return nil
}

func (d *CPU) Traffic() Traffic { return d.traffic }

// AllocHost returns ordinary memory: the CPU has nothing to pin.
func (d *CPU) AllocHost(nbytes int) ([]byte, error) {
	if nbytes < 0 {
		return nil, fmt.Errorf("AllocHost: negative size %d", nbytes)
	}
	return make([]byte, nbytes), nil
}

func (d *CPU) FreeHost([]byte) {}

// CopyInAsync copies at once: the CPU has no second stream to overlap on.
func (d *CPU) CopyInAsync(dst Buffer, src []byte, done Event) error {
	if _, ok := done.(*cpuEvent); !ok {
		return fmt.Errorf("CopyInAsync: event %T does not belong to the CPU device", done)
	}
	if err := d.CopyIn(dst, src); err != nil {
		return err
	}
	d.RecordEvent(done)
	return nil
}

// WaitEvent returns at once: every CPU call has finished when it returns.
func (d *CPU) WaitEvent(e Event) error {
	if _, ok := e.(*cpuEvent); !ok {
		return fmt.Errorf("WaitEvent: event %T does not belong to the CPU device", e)
	}
	return nil
}

// bufs resolves the call's buffers, in the order of args, after validating
// them; ok is false when the call must be skipped (an earlier or a new
// error). It returns an array, not a slice, so that a call allocates nothing.
func (d *CPU) bufs(op string, sizes []int, args ...arg) (out [maxArgs]*cpuBuffer, ok bool) {
	if d.failed() {
		return out, false
	}
	if err := checkArgs(op, sizes, args...); err != nil {
		d.fail(err)
		return out, false
	}
	for i, a := range args {
		b, err := d.own(op, a.buf)
		if err != nil {
			d.fail(err)
			return out, false
		}
		out[i] = b
	}
	return out, true
}

// maxArgs is the most buffers a primitive takes (BatchNormTrain's).
const maxArgs = 8

func (d *CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) {
	bs, ok := d.bufs("Gemm", []int{m, n, k}, f32("A", a, m*k), f32("B", b, k*n), f32("C", c, m*n))
	if !ok || m == 0 || n == 0 {
		return
	}
	if k == 0 { // BLAS leaves C alone when k = 0 but the definition scales it
		scale(bs[2].f32[:m*n], beta)
		return
	}
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	gemm(&d.passes, &d.tasks.gemm, gemmArgs{
		transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
		a: bs[0].f32[:m*k], lda: lda, b: bs[1].f32[:k*n], ldb: ldb, c: bs[2].f32[:m*n], ldc: n,
	})
}

func scale(x []float32, beta float32) {
	for i := range x {
		if beta == 0 {
			x[i] = 0
		} else {
			x[i] *= beta
		}
	}
}

// minPart is the least elements an elementwise pass gives one goroutine.
// Measured on training steps of the reference MLP (BenchmarkStep, batches
// 32–2048, 2 cores): splitting passes from 16 Ki elements on ran 10–30%
// faster than not splitting them, and up to 10% faster than splitting
// from 64 Ki on.
const minPart = 1 << 14

// The elementwise passes: each is a task (see cpu_pool.go) whose parts are
// contiguous ranges of elements or rows, so any split gives the same bits.

type addBiasTask struct {
	x, bias    []float32
	rows, cols int
}

func (t *addBiasTask) run(part, parts int) {
	lo, hi := span(t.rows, part, parts, 1)
	for i := lo; i < hi; i++ {
		vec.Add(t.x[i*t.cols:(i+1)*t.cols], t.bias)
	}
}

func (d *CPU) AddBias(x, bias Buffer, rows, cols int) {
	bs, ok := d.bufs("AddBias", []int{rows, cols}, f32("x", x, rows*cols), f32("bias", bias, cols))
	if !ok {
		return
	}
	d.tasks.addBias = addBiasTask{bs[0].f32, bs[1].f32, rows, cols}
	run(d, min(rows, partsFor(rows*cols, minPart)), &d.tasks.addBias)
}

type reluTask struct{ y, x []float32 }

func (t *reluTask) run(part, parts int) {
	lo, hi := span(len(t.y), part, parts, 16)
	vec.ReLU(t.y[lo:hi], t.x[lo:hi])
}

func (d *CPU) ReLU(y, x Buffer, n int) {
	bs, ok := d.bufs("ReLU", []int{n}, f32("y", y, n), f32("x", x, n))
	if !ok {
		return
	}
	d.tasks.relu = reluTask{bs[0].f32[:n], bs[1].f32[:n]}
	run(d, partsFor(n, minPart), &d.tasks.relu)
}

type reluBackwardTask struct{ dx, dy, y []float32 }

func (t *reluBackwardTask) run(part, parts int) {
	lo, hi := span(len(t.dx), part, parts, 16)
	vec.ReLUBackward(t.dx[lo:hi], t.dy[lo:hi], t.y[lo:hi])
}

func (d *CPU) ReLUBackward(dx, dy, y Buffer, n int) {
	bs, ok := d.bufs("ReLUBackward", []int{n}, f32("dx", dx, n), f32("dy", dy, n), f32("y", y, n))
	if !ok {
		return
	}
	d.tasks.reluBackward = reluBackwardTask{bs[0].f32[:n], bs[1].f32[:n], bs[2].f32[:n]}
	run(d, partsFor(n, minPart), &d.tasks.reluBackward)
}

// softmaxBlock is the rows whose losses are summed together before the
// blocks' sums are added in order: a fixed split of the batch's loss, the
// same for any number of parts.
const softmaxBlock = 64

type softmaxTask struct {
	grad, x    []float32 // grad is nil for the loss only
	labels     []int32
	rows, cols int
	gradScale  float32
	blockLoss  []float64 // Σ of the losses of each block of rows
	badRow     []int     // per part: the first row with a label out of range, or -1
}

func (t *softmaxTask) run(part, parts int) {
	blocks := len(t.blockLoss)
	b0, b1 := span(blocks, part, parts, 1)
	t.badRow[part] = -1
	for blk := b0; blk < b1; blk++ {
		var total float64
		for i := blk * softmaxBlock; i < min((blk+1)*softmaxBlock, t.rows); i++ {
			row := t.x[i*t.cols : (i+1)*t.cols]
			label := int(t.labels[i])
			if label < 0 || label >= t.cols {
				t.badRow[part] = i
				return
			}
			m := row[0]
			for _, v := range row {
				m = max(m, v)
			}
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v - m))
			}
			logSum := math.Log(sum)
			total += logSum - float64(row[label]-m)
			if t.grad != nil {
				g := t.grad[i*t.cols : (i+1)*t.cols]
				for j, v := range row {
					p := math.Exp(float64(v-m) - logSum)
					if j == label {
						p--
					}
					g[j] = t.gradScale * float32(p)
				}
			}
		}
		t.blockLoss[blk] = total
	}
}

func (d *CPU) SoftmaxCrossEntropy(grad, losses, logits, labels, guard Buffer, slot, rows, cols int, gradScale float32) {
	if d.failed() {
		return
	}
	if err := checkSlot("SoftmaxCrossEntropy", losses, slot); err != nil {
		d.fail(err)
		return
	}
	op, sizes := "SoftmaxCrossEntropy", []int{rows, cols}
	lossArg, logitsArg, labelsArg := f32("losses", losses, slot+1), f32("logits", logits, rows*cols), i32("labels", labels, rows)
	var bs [maxArgs]*cpuBuffer
	var ok bool
	if grad != nil {
		bs, ok = d.bufs(op, sizes, lossArg, logitsArg, labelsArg, f32("grad", grad, rows*cols))
	} else {
		bs, ok = d.bufs(op, sizes, lossArg, logitsArg, labelsArg)
	}
	if !ok {
		return
	}
	g, ok := d.guardOf(op, guard)
	if !ok {
		return
	}
	blocks := (rows + softmaxBlock - 1) / softmaxBlock
	parts := min(blocks, partsFor(rows*cols, minPart/4)) // two exps per element: heavier than the other passes
	sc := &d.softmaxScratch
	sc.blockLoss, sc.badRow = growFloat64(sc.blockLoss, blocks), growInt(sc.badRow, parts)
	d.tasks.softmax = softmaxTask{
		x: bs[1].f32, labels: bs[2].i32, rows: rows, cols: cols, gradScale: gradScale,
		blockLoss: sc.blockLoss, badRow: sc.badRow,
	}
	if grad != nil {
		d.tasks.softmax.grad = bs[3].f32
	}
	run(d, parts, &d.tasks.softmax)
	for _, i := range sc.badRow {
		if i >= 0 { // parts cover rows in order: the first bad row is in the first failing part
			d.fail(fmt.Errorf("SoftmaxCrossEntropy: label %d of row %d outside [0,%d)", bs[2].i32[i], i, cols))
			return
		}
	}
	var total float64
	for _, l := range sc.blockLoss {
		total += l
	}
	if rows > 0 {
		total /= float64(rows)
	}
	loss := float32(total)
	bs[0].f32[slot] = loss
	if g != nil && g.i32[0] == 0 && (math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0)) {
		g.i32[0] = int32(slot + 1)
	}
}

// guardOf returns the guard argument of op (see SoftmaxCrossEntropy and
// MomentumSGD), nil for none; ok is false when the call must be skipped.
func (d *CPU) guardOf(op string, guard Buffer) (g *cpuBuffer, ok bool) {
	if guard == nil {
		return nil, !d.failed()
	}
	bs, ok := d.bufs(op, nil, i32("guard", guard, 1))
	return bs[0], ok
}

func growFloat64(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

func growInt(s []int, n int) []int {
	if cap(s) < n {
		return make([]int, n)
	}
	return s[:n]
}

func (d *CPU) CountCorrect(counts, logits, labels Buffer, slot, rows, cols int) {
	if d.failed() {
		return
	}
	if err := checkSlot("CountCorrect", counts, slot); err != nil {
		d.fail(err)
		return
	}
	bs, ok := d.bufs("CountCorrect", []int{rows, cols}, i32("counts", counts, slot+1), f32("logits", logits, rows*cols), i32("labels", labels, rows))
	if !ok {
		return
	}
	x, lab := bs[1].f32, bs[2].i32
	var correct int32
	for i := 0; i < rows; i++ {
		row := x[i*cols : (i+1)*cols]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if int32(best) == lab[i] {
			correct++
		}
	}
	bs[0].i32[slot] = correct
}

// columnSumTask splits the columns: each output is summed over all rows, in
// row order, by one part.
type columnSumTask struct {
	dst, src   []float32
	rows, cols int
	beta       float32
}

func (t *columnSumTask) run(part, parts int) {
	lo, hi := span(t.cols, part, parts, 16)
	out := t.dst[lo:hi]
	scale(out, t.beta)
	for i := range t.rows {
		vec.Add(out, t.src[i*t.cols+lo:i*t.cols+hi])
	}
}

func (d *CPU) ColumnSum(dst, src Buffer, rows, cols int, beta float32) {
	bs, ok := d.bufs("ColumnSum", []int{rows, cols}, f32("dst", dst, cols), f32("src", src, rows*cols))
	if !ok {
		return
	}
	d.tasks.columnSum = columnSumTask{bs[0].f32[:cols], bs[1].f32, rows, cols, beta}
	run(d, min(cols/16, partsFor(rows*cols, minPart)), &d.tasks.columnSum)
}

type momentumTask struct {
	w, g, v                   []float32
	lr, momentum, weightDecay float32
}

func (t *momentumTask) run(part, parts int) {
	lo, hi := span(len(t.w), part, parts, 16)
	vec.MomentumSGD(t.w[lo:hi], t.g[lo:hi], t.v[lo:hi], t.lr, t.momentum, t.weightDecay)
}

func (d *CPU) MomentumSGD(w, grad, velocity, guard Buffer, n int, lr, momentum, weightDecay float32) {
	bs, ok := d.bufs("MomentumSGD", []int{n}, f32("w", w, n), f32("grad", grad, n), f32("velocity", velocity, n))
	if !ok {
		return
	}
	if g, ok := d.guardOf("MomentumSGD", guard); !ok || g != nil && g.i32[0] != 0 {
		return
	}
	d.tasks.momentum = momentumTask{bs[0].f32[:n], bs[1].f32[:n], bs[2].f32[:n], lr, momentum, weightDecay}
	run(d, partsFor(n, minPart), &d.tasks.momentum)
}

type adamTask struct {
	w, g, m, v []float32
	s          AdamStep
}

// run is plain Go: a square root and a division per element cost more
// than its loads, so vectorizing the loop would gain little.
func (t *adamTask) run(part, parts int) {
	lo, hi := span(len(t.w), part, parts, 16)
	s := t.s
	for i := lo; i < hi; i++ {
		// The conversions round each product: no fused multiply-add, so
		// every GOAMD64 level gives the same bits.
		g := t.g[i] + float32(s.L2*t.w[i])
		w := float32(s.Decay * t.w[i])
		m := float32(s.Beta1*t.m[i]) + float32(s.OneMinusBeta1*g)
		v := float32(s.Beta2*t.v[i]) + float32(float32(s.OneMinusBeta2*g)*g)
		t.m[i], t.v[i] = m, v
		denom := float32(math.Sqrt(float64(v)))/s.BiasCorrection2Sqrt + s.Eps
		t.w[i] = w - float32(s.StepSize*m)/denom
	}
}

func (d *CPU) Adam(w, grad, m, v, guard Buffer, n int, s AdamStep) {
	bs, ok := d.bufs("Adam", []int{n}, f32("w", w, n), f32("grad", grad, n), f32("m", m, n), f32("v", v, n))
	if !ok {
		return
	}
	if g, ok := d.guardOf("Adam", guard); !ok || g != nil && g.i32[0] != 0 {
		return
	}
	d.tasks.adam = adamTask{bs[0].f32[:n], bs[1].f32[:n], bs[2].f32[:n], bs[3].f32[:n], s}
	run(d, partsFor(n, minPart), &d.tasks.adam)
}

type normalizeTask struct {
	dst          []float32
	src          []uint8
	scale, shift float32
}

func (t *normalizeTask) run(part, parts int) {
	lo, hi := span(len(t.dst), part, parts, 64)
	vec.Normalize(t.dst[lo:hi], t.src[lo:hi], t.scale, t.shift)
}

func (d *CPU) NormalizeBytes(dst, src Buffer, n int, scale, shift float32) {
	bs, ok := d.bufs("NormalizeBytes", []int{n}, f32("dst", dst, n), u8("src", src, n))
	if !ok {
		return
	}
	d.tasks.normalize = normalizeTask{bs[0].f32[:n], bs[1].u8[:n], scale, shift}
	run(d, partsFor(n, minPart), &d.tasks.normalize)
}

func (d *CPU) GatherRows(dst, src, idx Buffer, rows, rowLen int) {
	if d.failed() {
		return
	}
	if dst == nil || src == nil || dst.DType() != src.DType() {
		d.fail(errors.New("GatherRows: dst and src must be buffers of the same dtype"))
		return
	}
	t := dst.DType()
	bs, ok := d.bufs("GatherRows", []int{rows, rowLen}, arg{"dst", dst, t, rows * rowLen}, arg{"src", src, t, 0}, i32("idx", idx, rows))
	if !ok {
		return
	}
	out, in, ix := bs[0].bytes, bs[1].bytes, bs[2].i32
	rowBytes := rowLen * t.Size()
	srcRows := src.Len() / max(rowLen, 1)
	for i := 0; i < rows; i++ {
		r := int(ix[i])
		if r < 0 || r >= srcRows {
			d.fail(fmt.Errorf("GatherRows: index %d of row %d outside [0,%d)", r, i, srcRows))
			return
		}
		copy(out[i*rowBytes:(i+1)*rowBytes], in[r*rowBytes:(r+1)*rowBytes])
	}
}

func (d *CPU) Zero(b Buffer) {
	if d.failed() {
		return
	}
	cb, err := d.own("Zero", b)
	if err != nil {
		d.fail(err)
		return
	}
	clear(cb.bytes)
}

type cpuEvent struct{ at time.Time }

func (*cpuEvent) deviceEvent() {}

func (d *CPU) NewEvent() (Event, error) { return &cpuEvent{}, nil }

func (d *CPU) RecordEvent(e Event) {
	if ev, ok := e.(*cpuEvent); ok {
		ev.at = time.Now()
	} else {
		d.fail(fmt.Errorf("RecordEvent: event %T does not belong to the CPU device", e))
	}
}

func (d *CPU) EventElapsed(from, to Event) (time.Duration, error) {
	a, ok1 := from.(*cpuEvent)
	b, ok2 := to.(*cpuEvent)
	if !ok1 || !ok2 {
		return 0, errors.New("EventElapsed: events do not belong to the CPU device")
	}
	if a.at.IsZero() || b.at.IsZero() {
		return 0, errors.New("EventElapsed: event never recorded")
	}
	return b.at.Sub(a.at), nil
}

// Sync has nothing to wait for on the CPU: every call has finished on return.
func (d *CPU) Sync() error  { return d.err }
func (d *CPU) Close() error { return nil }

// cpuModel reads the processor's name for result files; "cpu" if unknown.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
			}
		}
	}
	return runtime.GOARCH + " cpu"
}

// totalRAM reads MemTotal from /proc/meminfo; 0 if unknown.
// machineRAM is totalRAM, read once.
var machineRAM = sync.OnceValue(totalRAM)

func totalRAM() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}
