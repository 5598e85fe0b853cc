package device

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/kernels"
)

func TestGridFor(t *testing.T) {
	for _, c := range []struct{ n, gridCap, want int }{
		{0, 100, 0}, {1, 100, 1}, {256, 100, 1}, {257, 100, 2}, {4097, 100, 17}, {4097, 3, 3}, {1 << 30, 1056, 1056},
	} {
		if got := gridFor(c.n, c.gridCap); got != c.want {
			t.Errorf("gridFor(%d, %d) = %d, want %d", c.n, c.gridCap, got, c.want)
		}
	}
	// H100: 132 multiprocessors of 2048 threads hold 1056 blocks of 256.
	for _, c := range []struct{ sms, threads, want int }{{132, 2048, 1056}, {108, 2048, 864}, {1, 128, 1}, {1 << 20, 2048, maxGridCap}} {
		if got := gridCapFor(c.sms, c.threads); got != c.want {
			t.Errorf("gridCapFor(%d, %d) = %d, want %d", c.sms, c.threads, got, c.want)
		}
	}
}

// TestFitsKernel checks the bound that keeps the kernels' unsigned index
// arithmetic from wrapping: i < n and stride ≤ blockSize·maxGridCap.
func TestFitsKernel(t *testing.T) {
	limit := math.MaxInt32 - blockSize*maxGridCap
	if !fitsKernel(limit) || fitsKernel(limit+1) {
		t.Errorf("fitsKernel changes at the wrong place")
	}
	if uint64(limit)+blockSize*maxGridCap >= 1<<32 {
		t.Error("i + stride can wrap around an unsigned int")
	}
}

// TestLaunchesMatchTable builds every launch and checks its arguments
// against the kernel table (which kernels_test checks against the PTX).
func TestLaunchesMatchTable(t *testing.T) {
	const gridCap = 7
	launches := []launch{
		addBiasLaunch(1, 2, 3, 4, gridCap),
		reluLaunch(1, 2, 3, gridCap),
		reluBackwardLaunch(1, 2, 3, 4, gridCap),
		momentumSGDLaunch(1, 2, 3, 4, 5, 0.1, 0.9, 0, gridCap),
		adamLaunch(1, 2, 3, 4, 5, 6, NewAdamStep(0.001, 0.9, 0.999, 1e-8, 0, 1, false), gridCap),
		normalizeBytesLaunch(1, 2, 3, 1.0/255, 0, gridCap),
		gatherRowsLaunch(1, 2, 3, 4, 8, 9, 10, gridCap),
		gatherRowsLaunch(1, 2, 3, 4, 7, 9, 10, gridCap),
		softmaxLaunch(0, 2, 3, 4, 5, 0, 7, 8, 0.5, 10, 11),
		countCorrectLaunch(1, 2, 3, 4, 0, 6, 7),
		columnSumLaunch(1, 2, 3, 4, 1, gridCap),
		batchNormTrainLaunch(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 3, 0.1, 1e-5, gridCap),
		batchNormInferLaunch(1, 2, 3, 4, 5, 6, 7, 8, 1e-5, gridCap),
		batchNormBackwardLaunch(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 3, 3, gridCap),
		im2colLaunch(1, 2, ConvShape{N: 2, C: 3, H: 5, W: 5, KH: 3, KW: 3, Stride: 1, Pad: 1}, gridCap),
		col2imLaunch(1, 2, ConvShape{N: 2, C: 3, H: 5, W: 5, KH: 3, KW: 3, Stride: 1, Pad: 1}, gridCap),
		swapAxesLaunch(1, 2, 1, 3, 4, 5, gridCap),
		maxPoolLaunch(1, 2, 3, PoolShape{N: 2, C: 3, H: 4, W: 4, K: 2, Stride: 2}, gridCap),
		maxPoolBackwardLaunch(1, 2, 3, PoolShape{N: 2, C: 3, H: 4, W: 4, K: 2, Stride: 2}, gridCap),
	}
	used := map[string]bool{}
	for _, l := range launches {
		used[l.kernel] = true
		k, ok := kernels.Lookup(l.kernel)
		if !ok {
			t.Errorf("launch of %s, which the table lacks", l.kernel)
			continue
		}
		kinds := make([]kernels.Kind, len(l.args))
		for i, a := range l.args {
			kinds[i] = a.kind
		}
		if !slices.Equal(kinds, k.Params) {
			t.Errorf("%s: launch passes %v, the kernel takes %v", l.kernel, kinds, k.Params)
		}
		if l.grid < 1 || l.grid > gridCap {
			t.Errorf("%s: grid %d outside [1, %d]", l.kernel, l.grid, gridCap)
		}
	}
	for _, k := range kernels.Kernels() {
		if !used[k.Name] {
			t.Errorf("no launch of %s", k.Name)
		}
	}
}

// TestParams checks the parameter buffer cuLaunchKernel reads: a pointer in
// 8 bytes aligned to 8, an int or a float in 4 aligned to 4, little-endian,
// with padding only where a pointer follows an odd number of 4-byte values.
func TestParams(t *testing.T) {
	l := softmaxLaunch(0x1122334455667788, 2, 3, 4, -5, 6, 7, 8, 0.5, 9, 10)
	want := []byte{
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // grad
		2, 0, 0, 0, 0, 0, 0, 0, // losses
		3, 0, 0, 0, 0, 0, 0, 0, // logits
		4, 0, 0, 0, 0, 0, 0, 0, // labels
		0xfb, 0xff, 0xff, 0xff, 0, 0, 0, 0, // slot -5, then padding to 8
		6, 0, 0, 0, 0, 0, 0, 0, // slotBase
		7, 0, 0, 0, 8, 0, 0, 0, // rows, cols
		0, 0, 0, 0x3f, 0, 0, 0, 0, // gradScale 0.5, then padding to 8
		9, 0, 0, 0, 0, 0, 0, 0, // errBlock
		10, 0, 0, 0, 0, 0, 0, 0, // guard
	}
	if got := l.params(); !slices.Equal(got, want) {
		t.Errorf("params =\n% x\nwant\n% x", got, want)
	}
	// No padding at the end: the buffer ends where the last argument does.
	if got := len(reluLaunch(1, 2, 3, 100).params()); got != 20 {
		t.Errorf("relu's parameters take %d bytes, want 20", got)
	}
}

// TestGatherRowsWords checks that whole-word rows are copied as words.
func TestGatherRowsWords(t *testing.T) {
	for _, c := range []struct {
		rowBytes     int
		kernel       string
		rowLen, elts int
	}{{4 * 10, "gather_rows_u32", 10, 30}, {784, "gather_rows_u32", 196, 588}, {33, "gather_rows_u8", 33, 99}, {0, "gather_rows_u32", 0, 0}} {
		l := gatherRowsLaunch(1, 2, 3, 3, c.rowBytes, 5, 6, 100)
		if l.kernel != c.kernel || l.args[3].bits != uint64(c.elts) || l.args[4].bits != uint64(c.rowLen) {
			t.Errorf("rows of %d bytes: %s over %d elements of rows of %d, want %s, %d, %d",
				c.rowBytes, l.kernel, l.args[3].bits, l.args[4].bits, c.kernel, c.elts, c.rowLen)
		}
	}
}

func TestColumnSumGrid(t *testing.T) {
	for _, c := range []struct{ cols, cap, want int }{{1, 10, 1}, {32, 10, 1}, {33, 10, 2}, {512, 10, 10}, {0, 10, 0}} {
		if got := columnSumLaunch(1, 2, 5, c.cols, 0, c.cap).grid; got != c.want {
			t.Errorf("ColumnSum over %d columns, cap %d: grid %d, want %d", c.cols, c.cap, got, c.want)
		}
	}
}

func TestKernelError(t *testing.T) {
	if err := kernelError([errBlockInts]int32{}); err != nil {
		t.Errorf("an empty error block gave %v", err)
	}
	for _, c := range []struct {
		block [errBlockInts]int32
		want  string
	}{
		{[errBlockInts]int32{errLabel, 12, 3, 10}, "SoftmaxCrossEntropy: label 12 of row 3 outside [0,10)"},
		{[errBlockInts]int32{errIndex, -1, 0, 5}, "GatherRows: index -1 of row 0 outside [0,5)"},
		{[errBlockInts]int32{99, 1, 2, 3}, "error code 99"},
	} {
		if err := kernelError(c.block); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("kernelError(%v) = %v, want %q", c.block, err, c.want)
		}
	}
}

func TestCheckReplay(t *testing.T) {
	slots := []slotUse{{"SoftmaxCrossEntropy", 10, 0}, {"CountCorrect", 10, 2}}
	if err := checkReplay(slots, 7); err != nil {
		t.Errorf("base 7: %v", err)
	}
	for _, base := range []int{8, -1} {
		if err := checkReplay(slots, base); err == nil || !strings.Contains(err.Error(), "Launch:") {
			t.Errorf("base %d: %v, want an error naming Launch", base, err)
		}
	}
}
