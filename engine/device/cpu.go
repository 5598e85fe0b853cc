package device

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// CPU is the reference device: plain loops that are obviously right, and
// gonum's pure-Go SGEMM (which splits large products across goroutines).
// "Host↔device" copies are real memory copies into buffers the device owns,
// counted like any other device's, so the data-movement accounting is the
// same code on every device.
type CPU struct {
	firstError
	traffic Traffic
	blas    gonum.Implementation
}

// NewCPU returns a CPU device.
func NewCPU() *CPU { return &CPU{} }

type cpuBuffer struct {
	dtype DType
	bytes []byte // the storage, 8-byte aligned
	f32   []float32
	u8    []uint8
	i32   []int32
	freed bool
}

func (b *cpuBuffer) DType() DType { return b.dtype }
func (b *cpuBuffer) Len() int {
	return len(b.bytes) / b.dtype.Size()
}

func (d *CPU) Info() Info {
	return Info{Kind: "cpu", Name: cpuModel(), TotalMemory: totalRAM(), Threads: runtime.GOMAXPROCS(0)}
}

func (d *CPU) Alloc(t DType, n int) (Buffer, error) {
	if n < 0 {
		return nil, fmt.Errorf("Alloc: negative length %d", n)
	}
	if t > Int32 {
		return nil, fmt.Errorf("Alloc: unknown dtype %v", t)
	}
	words := make([]uint64, (n*t.Size()+7)/8) // uint64 backing keeps float32 views aligned
	b := &cpuBuffer{dtype: t}
	if len(words) > 0 {
		b.bytes = unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n*t.Size())
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

func (d *CPU) Free(b Buffer) {
	if cb, ok := b.(*cpuBuffer); ok {
		*cb = cpuBuffer{dtype: cb.dtype, freed: true}
	}
}

// own returns b as this device's buffer, or records an error.
func (d *CPU) own(op string, b Buffer) (*cpuBuffer, error) {
	cb, ok := b.(*cpuBuffer)
	if !ok {
		return nil, fmt.Errorf("%s: buffer %T does not belong to the CPU device", op, b)
	}
	if cb.freed {
		return nil, fmt.Errorf("%s: buffer used after Free", op)
	}
	return cb, nil
}

func (d *CPU) CopyIn(dst Buffer, src []byte) error {
	if err := checkCopy("CopyIn", dst, len(src)); err != nil {
		return err
	}
	b, err := d.own("CopyIn", dst)
	if err != nil {
		return err
	}
	copy(b.bytes, src)
	d.traffic.HostToDeviceBytes += int64(len(src))
	d.traffic.HostToDeviceCopies++
	return nil
}

func (d *CPU) CopyOut(dst []byte, src Buffer) error {
	if err := checkCopy("CopyOut", src, len(dst)); err != nil {
		return err
	}
	b, err := d.own("CopyOut", src)
	if err != nil {
		return err
	}
	copy(dst, b.bytes)
	d.traffic.DeviceToHostBytes += int64(len(dst))
	d.traffic.DeviceToHostCopies++
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

// bufs resolves the call's buffers after validating them; ok is false when
// the call must be skipped (an earlier or a new error).
func (d *CPU) bufs(op string, sizes []int, args ...arg) ([]*cpuBuffer, bool) {
	if d.failed() {
		return nil, false
	}
	if err := checkArgs(op, sizes, args...); err != nil {
		d.fail(err)
		return nil, false
	}
	out := make([]*cpuBuffer, len(args))
	for i, a := range args {
		b, err := d.own(op, a.buf)
		if err != nil {
			d.fail(err)
			return nil, false
		}
		out[i] = b
	}
	return out, true
}

func (d *CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b Buffer, beta float32, c Buffer) {
	bs, ok := d.bufs("Gemm", []int{m, n, k}, f32("A", a, m*k), f32("B", b, k*n), f32("C", c, m*n))
	if !ok || m == 0 || n == 0 {
		return
	}
	if k == 0 { // BLAS leaves C alone when k = 0 but the definition scales it
		scale(bs[2].f32[:m*n], beta)
		return
	}
	tA, lda := blas.NoTrans, k
	if transA {
		tA, lda = blas.Trans, m
	}
	tB, ldb := blas.NoTrans, n
	if transB {
		tB, ldb = blas.Trans, k
	}
	d.blas.Sgemm(tA, tB, m, n, k, alpha, bs[0].f32[:m*k], lda, bs[1].f32[:k*n], ldb, beta, bs[2].f32[:m*n], n)
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

func (d *CPU) AddBias(x, bias Buffer, rows, cols int) {
	bs, ok := d.bufs("AddBias", []int{rows, cols}, f32("x", x, rows*cols), f32("bias", bias, cols))
	if !ok {
		return
	}
	xs, b := bs[0].f32, bs[1].f32
	for i := 0; i < rows; i++ {
		row := xs[i*cols : (i+1)*cols]
		for j := range row {
			row[j] += b[j]
		}
	}
}

func (d *CPU) ReLU(y, x Buffer, n int) {
	bs, ok := d.bufs("ReLU", []int{n}, f32("y", y, n), f32("x", x, n))
	if !ok {
		return
	}
	ys, xs := bs[0].f32[:n], bs[1].f32[:n]
	for i, v := range xs {
		ys[i] = max(v, 0)
	}
}

func (d *CPU) ReLUBackward(dx, dy, y Buffer, n int) {
	bs, ok := d.bufs("ReLUBackward", []int{n}, f32("dx", dx, n), f32("dy", dy, n), f32("y", y, n))
	if !ok {
		return
	}
	dxs, dys, ys := bs[0].f32[:n], bs[1].f32[:n], bs[2].f32[:n]
	for i := range dxs {
		if ys[i] > 0 {
			dxs[i] = dys[i]
		} else {
			dxs[i] = 0
		}
	}
}

func (d *CPU) SoftmaxCrossEntropy(grad, losses, logits, labels Buffer, slot, rows, cols int, gradScale float32) {
	if d.failed() {
		return
	}
	if err := checkSlot("SoftmaxCrossEntropy", losses, slot); err != nil {
		d.fail(err)
		return
	}
	args := []arg{f32("losses", losses, slot+1), f32("logits", logits, rows*cols), i32("labels", labels, rows)}
	if grad != nil {
		args = append(args, f32("grad", grad, rows*cols))
	}
	bs, ok := d.bufs("SoftmaxCrossEntropy", []int{rows, cols}, args...)
	if !ok {
		return
	}
	out, x, lab := bs[0].f32, bs[1].f32, bs[2].i32
	var total float64
	for i := 0; i < rows; i++ {
		row := x[i*cols : (i+1)*cols]
		label := int(lab[i])
		if label < 0 || label >= cols {
			d.fail(fmt.Errorf("SoftmaxCrossEntropy: label %d of row %d outside [0,%d)", label, i, cols))
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
		if grad != nil {
			g := bs[3].f32[i*cols : (i+1)*cols]
			for j, v := range row {
				p := math.Exp(float64(v-m) - logSum)
				if j == label {
					p--
				}
				g[j] = gradScale * float32(p)
			}
		}
	}
	if rows > 0 {
		total /= float64(rows)
	}
	out[slot] = float32(total)
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

func (d *CPU) ColumnSum(dst, src Buffer, rows, cols int, beta float32) {
	bs, ok := d.bufs("ColumnSum", []int{rows, cols}, f32("dst", dst, cols), f32("src", src, rows*cols))
	if !ok {
		return
	}
	out, x := bs[0].f32[:cols], bs[1].f32
	scale(out, beta)
	for i := 0; i < rows; i++ {
		for j, v := range x[i*cols : (i+1)*cols] {
			out[j] += v
		}
	}
}

func (d *CPU) MomentumSGD(w, grad, velocity Buffer, n int, lr, momentum, weightDecay float32) {
	bs, ok := d.bufs("MomentumSGD", []int{n}, f32("w", w, n), f32("grad", grad, n), f32("velocity", velocity, n))
	if !ok {
		return
	}
	ws, gs, vs := bs[0].f32[:n], bs[1].f32[:n], bs[2].f32[:n]
	for i := range ws {
		vs[i] = momentum*vs[i] + (gs[i] + weightDecay*ws[i])
		ws[i] -= lr * vs[i]
	}
}

func (d *CPU) NormalizeBytes(dst, src Buffer, n int, scale, shift float32) {
	bs, ok := d.bufs("NormalizeBytes", []int{n}, f32("dst", dst, n), u8("src", src, n))
	if !ok {
		return
	}
	out, in := bs[0].f32[:n], bs[1].u8[:n]
	for i, v := range in {
		out[i] = scale*float32(v) + shift
	}
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
