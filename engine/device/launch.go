package device

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/batchlab/batchlab/kernels"
)

// The host side of the CUDA kernels that needs no driver: grid sizes and
// argument packing, one small pure function per kernel. The CUDA device
// launches what these return, and launch_test.go checks them in the CPU
// build.

// blockSize is the threads of every block: a multiple of the warp size, as
// the row kernels need, and 8 warps, enough to hide memory latency in the
// elementwise ones.
const blockSize = 256

// launch is one kernel launch: grid blocks of blockSize threads, in one
// dimension (every kernel here indexes with .x only).
type launch struct {
	kernel string
	grid   int
	args   []launchArg
}

// launchArg is one kernel argument with the kind the kernel declares.
type launchArg struct {
	kind kernels.Kind
	bits uint64
}

func ptrArg(p uint64) launchArg { return launchArg{kernels.Ptr, p} }

// intArg takes an int the caller has checked fits an int32 (see fitsKernel).
func intArg(v int) launchArg       { return launchArg{kernels.Int, uint64(uint32(int32(v)))} }
func floatArg(v float32) launchArg { return launchArg{kernels.Float, uint64(math.Float32bits(v))} }

// params packs the arguments the way the kernel's parameter list lies in
// memory, for cuLaunchKernel's CU_LAUNCH_PARAM_BUFFER_POINTER: each at its
// own size and alignment (kernels.Kind.Size), little-endian, the buffer as
// long as the last one's end. The driver checks that length against the
// kernel's parameters, so a missing or wrong-size argument fails the launch
// instead of feeding the kernel garbage.
func (l launch) params() []byte {
	var buf []byte
	for _, a := range l.args {
		size := a.kind.Size()
		for len(buf)%size != 0 {
			buf = append(buf, 0)
		}
		if size == 8 {
			buf = binary.LittleEndian.AppendUint64(buf, a.bits)
		} else {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(a.bits))
		}
	}
	return buf
}

// gridFor is the number of blocks for n elements, one per thread, capped at
// gridCap blocks; the kernels' grid-stride loops cover the rest. 0 for
// n = 0: nothing to launch.
func gridFor(n, gridCap int) int {
	return min((n+blockSize-1)/blockSize, gridCap)
}

// gridCapFor is the grid that keeps every multiprocessor full: more blocks
// only queue behind these, and a grid-stride loop reuses them instead.
func gridCapFor(multiprocessors, threadsPerMultiprocessor int) int {
	return min(max(1, multiprocessors*threadsPerMultiprocessor/blockSize), maxGridCap)
}

// fitsKernel reports whether element counts fit the kernels' int
// parameters and their unsigned index arithmetic.
func fitsKernel(n int) bool { return n <= math.MaxInt32-blockSize*maxGridCap }

// maxGridCap bounds gridCap so that i + stride in a grid-stride loop stays
// below 2^32 for any i < n ≤ fitsKernel's bound (an H100 needs 1056).
const maxGridCap = 1 << 16

func addBiasLaunch(x, bias uint64, rows, cols, gridCap int) launch {
	n := rows * cols
	return launch{"add_bias", gridFor(n, gridCap), []launchArg{ptrArg(x), ptrArg(bias), intArg(n), intArg(cols)}}
}

func reluLaunch(y, x uint64, n, gridCap int) launch {
	return launch{"relu", gridFor(n, gridCap), []launchArg{ptrArg(y), ptrArg(x), intArg(n)}}
}

func reluBackwardLaunch(dx, dy, y uint64, n, gridCap int) launch {
	return launch{"relu_backward", gridFor(n, gridCap), []launchArg{ptrArg(dx), ptrArg(dy), ptrArg(y), intArg(n)}}
}

// momentumSGDLaunch and softmaxLaunch take the guard's address, 0 for none.
func momentumSGDLaunch(w, grad, velocity, guard uint64, n int, lr, momentum, weightDecay float32, gridCap int) launch {
	return launch{"momentum_sgd", gridFor(n, gridCap), []launchArg{
		ptrArg(w), ptrArg(grad), ptrArg(velocity), intArg(n), floatArg(lr), floatArg(momentum), floatArg(weightDecay), ptrArg(guard)}}
}

// adamLaunch takes the guard's address, 0 for none.
func adamLaunch(w, grad, m, v, guard uint64, n int, s AdamStep, gridCap int) launch {
	return launch{"adam", gridFor(n, gridCap), []launchArg{
		ptrArg(w), ptrArg(grad), ptrArg(m), ptrArg(v), intArg(n), floatArg(s.Beta1), floatArg(s.OneMinusBeta1), floatArg(s.Beta2), floatArg(s.OneMinusBeta2), floatArg(s.Eps),
		floatArg(s.L2), floatArg(s.Decay), floatArg(s.StepSize), floatArg(s.BiasCorrection2Sqrt), ptrArg(guard)}}
}

func normalizeBytesLaunch(dst, src uint64, n int, scale, shift float32, gridCap int) launch {
	return launch{"normalize_bytes", gridFor(n, gridCap), []launchArg{ptrArg(dst), ptrArg(src), intArg(n), floatArg(scale), floatArg(shift)}}
}

// gatherRowsLaunch copies rows of rowBytes bytes: as 4-byte words where the
// rows are whole words (float32 rows, and uint8 rows of a multiple of 4;
// buffers start 256-byte aligned), else byte by byte.
func gatherRowsLaunch(dst, src, idx uint64, rows, rowBytes, srcRows int, errBlock uint64, gridCap int) launch {
	kernel, rowLen := "gather_rows_u8", rowBytes
	if rowBytes%4 == 0 {
		kernel, rowLen = "gather_rows_u32", rowBytes/4
	}
	n := rows * rowLen
	return launch{kernel, gridFor(n, gridCap), []launchArg{
		ptrArg(dst), ptrArg(src), ptrArg(idx), intArg(n), intArg(rowLen), intArg(srcRows), ptrArg(errBlock)}}
}

// softmaxLaunch and countCorrectLaunch run one block: see kernels/rows.cu.
// slotBase is 0, or the device int a graph replay adds to slot.
func softmaxLaunch(grad, losses, logits, labels uint64, slot int, slotBase uint64, rows, cols int, gradScale float32, errBlock, guard uint64) launch {
	return launch{"softmax_xent", 1, []launchArg{
		ptrArg(grad), ptrArg(losses), ptrArg(logits), ptrArg(labels), intArg(slot), ptrArg(slotBase),
		intArg(rows), intArg(cols), floatArg(gradScale), ptrArg(errBlock), ptrArg(guard)}}
}

func countCorrectLaunch(counts, logits, labels uint64, slot int, slotBase uint64, rows, cols int) launch {
	return launch{"count_correct", 1, []launchArg{
		ptrArg(counts), ptrArg(logits), ptrArg(labels), intArg(slot), ptrArg(slotBase), intArg(rows), intArg(cols)}}
}

// columnSumLaunch gives each block tiles of 32 columns (kernels/rows.cu).
func columnSumLaunch(dst, src uint64, rows, cols int, beta float32, gridCap int) launch {
	tiles := (cols + 31) / 32
	return launch{"column_sum", min(tiles, gridCap), []launchArg{ptrArg(dst), ptrArg(src), intArg(rows), intArg(cols), floatArg(beta)}}
}

// batchNormTrainLaunch and batchNormBackwardLaunch give each block tiles of
// 32 columns, whose groups of size rows it takes in order
// (kernels/batchnorm.cu).
func batchNormTrainLaunch(y, x, gamma, beta, mean, invStd, runMean, runVar uint64, rows, cols, size, groups int, momentum, eps float32, gridCap int) launch {
	tiles := (cols + 31) / 32
	return launch{"bn_train", min(tiles, gridCap), []launchArg{
		ptrArg(y), ptrArg(x), ptrArg(gamma), ptrArg(beta), ptrArg(mean), ptrArg(invStd), ptrArg(runMean), ptrArg(runVar),
		intArg(rows), intArg(cols), intArg(size), intArg(groups), floatArg(momentum), floatArg(eps)}}
}

func batchNormInferLaunch(y, x, gamma, beta, runMean, runVar uint64, rows, cols int, eps float32, gridCap int) launch {
	n := rows * cols
	return launch{"bn_infer", gridFor(n, gridCap), []launchArg{
		ptrArg(y), ptrArg(x), ptrArg(gamma), ptrArg(beta), ptrArg(runMean), ptrArg(runVar), intArg(n), intArg(cols), floatArg(eps)}}
}

func batchNormBackwardLaunch(dx, dgamma, dbeta, dy, x, gamma, mean, invStd uint64, rows, cols, size, groups int, gridCap int) launch {
	tiles := (cols + 31) / 32
	return launch{"bn_backward", min(tiles, gridCap), []launchArg{
		ptrArg(dx), ptrArg(dgamma), ptrArg(dbeta), ptrArg(dy), ptrArg(x), ptrArg(gamma), ptrArg(mean), ptrArg(invStd),
		intArg(rows), intArg(cols), intArg(size), intArg(groups)}}
}

// convArgs are a convolution's sizes and layout as im2col and col2im take them.
func convArgs(s ConvShape) []launchArg {
	channelMajor := 0
	if s.ChannelMajor {
		channelMajor = 1
	}
	return []launchArg{intArg(s.N), intArg(s.C), intArg(s.H), intArg(s.W), intArg(s.KH), intArg(s.KW),
		intArg(s.Stride), intArg(s.Pad), intArg(s.OutH()), intArg(s.OutW()), intArg(channelMajor)}
}

// poolArgs are a pooling's sizes as maxpool and maxpool_backward take them.
func poolArgs(s PoolShape) []launchArg {
	return []launchArg{intArg(s.H), intArg(s.W), intArg(s.K), intArg(s.Stride), intArg(s.Pad), intArg(s.OutH()), intArg(s.OutW())}
}

// The kernels of kernels/conv.cu run one thread per output element.
func im2colLaunch(col, x uint64, s ConvShape, gridCap int) launch {
	n := s.ColRows() * s.ColCols()
	return launch{"im2col", gridFor(n, gridCap), append([]launchArg{ptrArg(col), ptrArg(x), intArg(n)}, convArgs(s)...)}
}

func col2imLaunch(dx, col uint64, s ConvShape, gridCap int) launch {
	n := s.N * s.C * s.H * s.W
	return launch{"col2im", gridFor(n, gridCap), append([]launchArg{ptrArg(dx), ptrArg(col), intArg(n)}, convArgs(s)...)}
}

func swapAxesLaunch(dst, src uint64, outer, a, b, inner, gridCap int) launch {
	n := outer * a * b * inner
	return launch{"swap_axes", gridFor(n, gridCap), []launchArg{ptrArg(dst), ptrArg(src), intArg(n), intArg(a), intArg(b), intArg(inner)}}
}

func maxPoolLaunch(y, argmax, x uint64, s PoolShape, gridCap int) launch {
	n := s.N * s.C * s.OutH() * s.OutW()
	return launch{"maxpool", gridFor(n, gridCap), append([]launchArg{ptrArg(y), ptrArg(argmax), ptrArg(x), intArg(n)}, poolArgs(s)...)}
}

func maxPoolBackwardLaunch(dx, dy, argmax uint64, s PoolShape, gridCap int) launch {
	n := s.N * s.C * s.H * s.W
	return launch{"maxpool_backward", gridFor(n, gridCap), append([]launchArg{ptrArg(dx), ptrArg(dy), ptrArg(argmax), intArg(n)}, poolArgs(s)...)}
}

// The error block kernels report bad input in (kernels/common.cuh): a code
// and three details.
const (
	errBlockInts = 4
	errLabel     = 1 // BL_ERR_LABEL: label, row, classes
	errIndex     = 2 // BL_ERR_INDEX: index, row, source rows
)

// kernelError turns an error block into the error the CPU device gives for
// the same input; nil when no kernel reported one.
func kernelError(block [errBlockInts]int32) error {
	code, a, b, c := block[0], block[1], block[2], block[3]
	switch code {
	case 0:
		return nil
	case errLabel:
		return fmt.Errorf("SoftmaxCrossEntropy: label %d of row %d outside [0,%d)", a, b, c)
	case errIndex:
		return fmt.Errorf("GatherRows: index %d of row %d outside [0,%d)", a, b, c)
	}
	return fmt.Errorf("a kernel reported error code %d (%d, %d, %d)", code, a, b, c)
}
