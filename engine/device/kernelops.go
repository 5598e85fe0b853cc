package device

import (
	"errors"
	"fmt"
)

// kernelRunner is what kernelOps needs from a device that runs the kernels
// of package kernels: the CUDA device (on a GPU, or on the fake driver of
// kernels/fakecuda, which tests it without one).
type kernelRunner interface {
	// addr returns the address kernels use for b, a live buffer of this
	// device, or an error naming op.
	addr(op string, b Buffer) (uint64, error)
	// launch issues l after the work issued before it.
	launch(l launch) error
}

// kernelOps implements the kernel primitives of Device (AddBias … GatherRows)
// once for every device that runs our kernels: the arguments are checked as
// the CPU device checks them, then the launch of launch.go is issued. It
// keeps the device's first error. Devices embed it.
type kernelOps struct {
	firstError
	runner   kernelRunner
	gridCap  int      // the most blocks of a grid-stride launch (gridFor)
	errBlock uint64   // where kernels report bad input, read at Sync (kernelError)
	capture  *capture // non-nil while a graph is being captured (Grapher)
}

// addrs checks a call's arguments and returns their kernel addresses, 0
// for a nil buffer the call allows; ok is false when the call must be
// skipped (an earlier or a new error).
func (k *kernelOps) addrs(op string, sizes []int, args ...arg) ([]uint64, bool) {
	if k.failed() {
		return nil, false
	}
	if err := checkArgs(op, sizes, args...); err != nil {
		k.fail(err)
		return nil, false
	}
	out := make([]uint64, len(args))
	for i, a := range args {
		if !fitsKernel(a.n) {
			k.fail(fmt.Errorf("%s: %d elements of %s are beyond the kernels' 32-bit sizes", op, a.n, a.name))
			return nil, false
		}
		p, err := k.runner.addr(op, a.buf)
		if err != nil {
			k.fail(err)
			return nil, false
		}
		out[i] = p
	}
	return out, true
}

// issue launches l, unless its grid is empty (nothing to do).
func (k *kernelOps) issue(op string, l launch) {
	if l.grid == 0 {
		return
	}
	if err := k.runner.launch(l); err != nil {
		k.fail(fmt.Errorf("%s: %s: %w", op, l.kernel, err))
	}
}

// slotBase returns the base pointer of a per-step result: 0 outside a
// capture; inside one, the graph's base, and the slot is remembered for the
// checks of each replay.
func (k *kernelOps) slotBase(op string, b Buffer, slot int) uint64 {
	if k.capture == nil {
		return 0
	}
	k.capture.slots = append(k.capture.slots, slotUse{op, b.Len(), slot})
	return k.capture.base
}

// notCapturing is the error of a call that cannot be part of a graph. It
// is also the device's error: the capture it was made in is broken.
func (k *kernelOps) notCapturing(op string) error {
	if k.capture == nil {
		return nil
	}
	err := fmt.Errorf("%s: not allowed while capturing a graph (only compute calls are)", op)
	k.fail(err)
	return err
}

func (k *kernelOps) AddBias(x, bias Buffer, rows, cols int) {
	p, ok := k.addrs("AddBias", []int{rows, cols}, f32("x", x, rows*cols), f32("bias", bias, cols))
	if ok {
		k.issue("AddBias", addBiasLaunch(p[0], p[1], rows, cols, k.gridCap))
	}
}

func (k *kernelOps) ReLU(y, x Buffer, n int) {
	p, ok := k.addrs("ReLU", []int{n}, f32("y", y, n), f32("x", x, n))
	if ok {
		k.issue("ReLU", reluLaunch(p[0], p[1], n, k.gridCap))
	}
}

func (k *kernelOps) ReLUBackward(dx, dy, y Buffer, n int) {
	p, ok := k.addrs("ReLUBackward", []int{n}, f32("dx", dx, n), f32("dy", dy, n), f32("y", y, n))
	if ok {
		k.issue("ReLUBackward", reluBackwardLaunch(p[0], p[1], p[2], n, k.gridCap))
	}
}

func (k *kernelOps) SoftmaxCrossEntropy(grad, losses, logits, labels, guard Buffer, slot, rows, cols int, gradScale float32) {
	const op = "SoftmaxCrossEntropy"
	if k.failed() {
		return
	}
	if err := checkSlot(op, losses, slot); err != nil {
		k.fail(err)
		return
	}
	args := []arg{f32("losses", losses, slot+1), f32("logits", logits, rows*cols), i32("labels", labels, rows)}
	if grad != nil {
		args = append(args, f32("grad", grad, rows*cols))
	}
	p, ok := k.addrs(op, []int{rows, cols}, args...)
	if !ok {
		return
	}
	var g uint64 // null: no gradient
	if grad != nil {
		g = p[3]
	}
	gp, ok := k.guardAddr(op, guard)
	if ok {
		k.issue(op, softmaxLaunch(g, p[0], p[1], p[2], slot, k.slotBase(op, losses, slot), rows, cols, gradScale, k.errBlock, gp))
	}
}

// guardAddr returns the kernel address of op's guard (see
// SoftmaxCrossEntropy and MomentumSGD), 0 for none; ok is false when the
// call must be skipped.
func (k *kernelOps) guardAddr(op string, guard Buffer) (uint64, bool) {
	if guard == nil {
		return 0, !k.failed()
	}
	p, ok := k.addrs(op, nil, i32("guard", guard, 1))
	if !ok {
		return 0, false
	}
	return p[0], true
}

func (k *kernelOps) CountCorrect(counts, logits, labels Buffer, slot, rows, cols int) {
	const op = "CountCorrect"
	if k.failed() {
		return
	}
	if err := checkSlot(op, counts, slot); err != nil {
		k.fail(err)
		return
	}
	p, ok := k.addrs(op, []int{rows, cols}, i32("counts", counts, slot+1), f32("logits", logits, rows*cols), i32("labels", labels, rows))
	if ok {
		k.issue(op, countCorrectLaunch(p[0], p[1], p[2], slot, k.slotBase(op, counts, slot), rows, cols))
	}
}

func (k *kernelOps) ColumnSum(dst, src Buffer, rows, cols int, beta float32) {
	p, ok := k.addrs("ColumnSum", []int{rows, cols}, f32("dst", dst, cols), f32("src", src, rows*cols))
	if ok {
		k.issue("ColumnSum", columnSumLaunch(p[0], p[1], rows, cols, beta, k.gridCap))
	}
}

func (k *kernelOps) MomentumSGD(w, grad, velocity, guard Buffer, n int, lr, momentum, weightDecay float32) {
	p, ok := k.addrs("MomentumSGD", []int{n}, f32("w", w, n), f32("grad", grad, n), f32("velocity", velocity, n))
	if !ok {
		return
	}
	if gp, ok := k.guardAddr("MomentumSGD", guard); ok {
		k.issue("MomentumSGD", momentumSGDLaunch(p[0], p[1], p[2], gp, n, lr, momentum, weightDecay, k.gridCap))
	}
}

func (k *kernelOps) Adam(w, grad, m, v, guard Buffer, n int, s AdamStep) {
	p, ok := k.addrs("Adam", []int{n}, f32("w", w, n), f32("grad", grad, n), f32("m", m, n), f32("v", v, n))
	if !ok {
		return
	}
	if gp, ok := k.guardAddr("Adam", guard); ok {
		k.issue("Adam", adamLaunch(p[0], p[1], p[2], p[3], gp, n, s, k.gridCap))
	}
}

func (k *kernelOps) NormalizeBytes(dst, src Buffer, n int, scale, shift float32) {
	p, ok := k.addrs("NormalizeBytes", []int{n}, f32("dst", dst, n), u8("src", src, n))
	if ok {
		k.issue("NormalizeBytes", normalizeBytesLaunch(p[0], p[1], n, scale, shift, k.gridCap))
	}
}

// GatherRows checks indices on the device: an index outside src is reported
// in the error block and becomes the device's error at Sync.
func (k *kernelOps) GatherRows(dst, src, idx Buffer, rows, rowLen int) {
	if k.failed() {
		return
	}
	if dst == nil || src == nil || dst.DType() != src.DType() {
		k.fail(errors.New("GatherRows: dst and src must be buffers of the same dtype"))
		return
	}
	t := dst.DType()
	p, ok := k.addrs("GatherRows", []int{rows, rowLen},
		arg{"dst", dst, t, rows * rowLen}, arg{"src", src, t, src.Len()}, i32("idx", idx, rows))
	if ok {
		srcRows := src.Len() / max(rowLen, 1)
		k.issue("GatherRows", gatherRowsLaunch(p[0], p[1], p[2], rows, rowLen*t.Size(), srcRows, k.errBlock, k.gridCap))
	}
}

// Ghost batch normalization (BatchNormer): the kernels of
// kernels/batchnorm.cu, with the CPU device's argument checks.

var _ BatchNormer = (*kernelOps)(nil)

func (k *kernelOps) BatchNormTrain(y, x, gamma, beta, mean, invStd, runMean, runVar Buffer, rows, cols, ghost int, momentum, eps float32) {
	const op = "BatchNormTrain"
	groups := GhostGroups(rows, ghost)
	p, ok := k.addrs(op, []int{rows, cols},
		f32("y", y, rows*cols), f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("beta", beta, cols),
		f32("mean", mean, groups*cols), f32("invStd", invStd, groups*cols), f32("runMean", runMean, cols), f32("runVar", runVar, cols))
	if ok {
		k.issue(op, batchNormTrainLaunch(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
			rows, cols, ghostSize(rows, ghost), groups, momentum, eps, k.gridCap))
	}
}

func (k *kernelOps) BatchNormInfer(y, x, gamma, beta, runMean, runVar Buffer, rows, cols int, eps float32) {
	const op = "BatchNormInfer"
	p, ok := k.addrs(op, []int{rows, cols},
		f32("y", y, rows*cols), f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("beta", beta, cols),
		f32("runMean", runMean, cols), f32("runVar", runVar, cols))
	if ok {
		k.issue(op, batchNormInferLaunch(p[0], p[1], p[2], p[3], p[4], p[5], rows, cols, eps, k.gridCap))
	}
}

func (k *kernelOps) BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, mean, invStd Buffer, rows, cols, ghost int) {
	const op = "BatchNormBackward"
	groups := GhostGroups(rows, ghost)
	p, ok := k.addrs(op, []int{rows, cols},
		f32("dx", dx, rows*cols), f32("dgamma", dgamma, cols), f32("dbeta", dbeta, cols), f32("dy", dy, rows*cols),
		f32("x", x, rows*cols), f32("gamma", gamma, cols), f32("mean", mean, groups*cols), f32("invStd", invStd, groups*cols))
	if ok {
		k.issue(op, batchNormBackwardLaunch(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
			rows, cols, ghostSize(rows, ghost), groups, k.gridCap))
	}
}

// Convolution data movement (Convolver): the kernels of kernels/conv.cu,
// with the CPU device's checks.

var _ Convolver = (*kernelOps)(nil)

// convAddrs checks a convolution call's shape and buffers, as the CPU's
// convBufs does.
func (k *kernelOps) convAddrs(op string, shapeErr error, args ...arg) ([]uint64, bool) {
	if shapeErr != nil && !k.failed() {
		k.fail(fmt.Errorf("%s: %w", op, shapeErr))
	}
	return k.addrs(op, nil, args...)
}

func (k *kernelOps) Im2Col(col, x Buffer, s ConvShape) {
	err := s.Validate()
	n := 0
	if err == nil {
		n = s.ColRows() * s.ColCols()
	}
	p, ok := k.convAddrs("Im2Col", err, f32("col", col, n), f32("x", x, s.N*s.C*s.H*s.W))
	if ok {
		k.issue("Im2Col", im2colLaunch(p[0], p[1], s, k.gridCap))
	}
}

func (k *kernelOps) Col2Im(dx, col Buffer, s ConvShape) {
	err := s.Validate()
	n := 0
	if err == nil {
		n = s.ColRows() * s.ColCols()
	}
	p, ok := k.convAddrs("Col2Im", err, f32("dx", dx, s.N*s.C*s.H*s.W), f32("col", col, n))
	if ok {
		k.issue("Col2Im", col2imLaunch(p[0], p[1], s, k.gridCap))
	}
}

func (k *kernelOps) SwapAxes(dst, src Buffer, outer, a, b, inner int) {
	n, err := swapSizes(outer, a, b, inner)
	if err != nil {
		k.fail(err)
		return
	}
	p, ok := k.addrs("SwapAxes", nil, f32("dst", dst, n), f32("src", src, n))
	if ok {
		k.issue("SwapAxes", swapAxesLaunch(p[0], p[1], outer, a, b, inner, k.gridCap))
	}
}

func (k *kernelOps) MaxPool(y, argmax, x Buffer, s PoolShape) {
	err := s.Validate()
	n := 0
	if err == nil {
		n = s.N * s.C * s.OutH() * s.OutW()
	}
	p, ok := k.convAddrs("MaxPool", err, f32("y", y, n), i32("argmax", argmax, n), f32("x", x, s.N*s.C*s.H*s.W))
	if ok {
		k.issue("MaxPool", maxPoolLaunch(p[0], p[1], p[2], s, k.gridCap))
	}
}

func (k *kernelOps) MaxPoolBackward(dx, dy, argmax Buffer, s PoolShape) {
	err := s.Validate()
	n := 0
	if err == nil {
		n = s.N * s.C * s.OutH() * s.OutW()
	}
	p, ok := k.convAddrs("MaxPoolBackward", err, f32("dx", dx, s.N*s.C*s.H*s.W), f32("dy", dy, n), i32("argmax", argmax, n))
	if ok {
		k.issue("MaxPoolBackward", maxPoolBackwardLaunch(p[0], p[1], p[2], s, k.gridCap))
	}
}
