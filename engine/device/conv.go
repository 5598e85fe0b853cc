package device

import (
	"fmt"
	"math"
)

// ConvShape is a 2-D convolution's geometry: a batch of N images of C×H×W,
// a KH×KW kernel, stride and zero padding on every side. The images are
// stored NCHW, or with ChannelMajor CNHW: channel by channel, as a conv's
// GEMM leaves its output (F × N·OH·OW), so that one conv can read the
// previous one's maps without an axis swap between them.
type ConvShape struct {
	N, C, H, W, KH, KW, Stride, Pad int
	ChannelMajor                    bool
}

// plane is the index of image n's channel c among the N·C planes of H×W.
func (s ConvShape) plane(n, c int) int {
	if s.ChannelMajor {
		return c*s.N + n
	}
	return n*s.C + c
}

// imageChannel is plane's inverse: the image and channel of plane u.
func (s ConvShape) imageChannel(u int) (n, c int) {
	if s.ChannelMajor {
		return u % s.N, u / s.N
	}
	return u / s.C, u % s.C
}

// OutH is the output's height: (H + 2·Pad − KH)/Stride + 1.
func (s ConvShape) OutH() int { return outSize(s.H, s.KH, s.Stride, s.Pad) }

// OutW is the output's width.
func (s ConvShape) OutW() int { return outSize(s.W, s.KW, s.Stride, s.Pad) }

// ColRows is the rows of the im2col matrix: C·KH·KW.
func (s ConvShape) ColRows() int { return s.C * s.KH * s.KW }

// ColCols is its columns: N·OutH·OutW.
func (s ConvShape) ColCols() int { return s.N * s.OutH() * s.OutW() }

// Validate reports the first bad field in one line.
func (s ConvShape) Validate() error {
	if err := positive("conv", []string{"N", "C", "H", "W", "KH", "KW", "stride"}, s.N, s.C, s.H, s.W, s.KH, s.KW, s.Stride); err != nil {
		return err
	}
	if s.Pad < 0 {
		return fmt.Errorf("conv: negative padding %d", s.Pad)
	}
	if s.KH > s.H+2*s.Pad || s.KW > s.W+2*s.Pad {
		return fmt.Errorf("conv: kernel %d×%d larger than the padded image %d×%d", s.KH, s.KW, s.H+2*s.Pad, s.W+2*s.Pad)
	}
	if err := fits("conv", s.N, s.C, s.H, s.W); err != nil {
		return err
	}
	return fits("conv", s.C, s.KH, s.KW, s.N, s.OutH(), s.OutW())
}

// PoolShape is a max pooling's geometry: K×K windows, a stride, and padding
// that is never chosen (at most K/2, as in PyTorch, so that every window
// holds part of the image).
type PoolShape struct{ N, C, H, W, K, Stride, Pad int }

// OutH is the output's height: (H + 2·Pad − K)/Stride + 1.
func (s PoolShape) OutH() int { return outSize(s.H, s.K, s.Stride, s.Pad) }

// OutW is the output's width.
func (s PoolShape) OutW() int { return outSize(s.W, s.K, s.Stride, s.Pad) }

// Validate reports the first bad field in one line.
func (s PoolShape) Validate() error {
	if err := positive("pool", []string{"N", "C", "H", "W", "K", "stride"}, s.N, s.C, s.H, s.W, s.K, s.Stride); err != nil {
		return err
	}
	if s.Pad < 0 {
		return fmt.Errorf("pool: negative padding %d", s.Pad)
	}
	if 2*s.Pad > s.K {
		return fmt.Errorf("pool: padding %d more than half the window %d", s.Pad, s.K)
	}
	if s.K > s.H+2*s.Pad || s.K > s.W+2*s.Pad {
		return fmt.Errorf("pool: window %d larger than the padded image %d×%d", s.K, s.H+2*s.Pad, s.W+2*s.Pad)
	}
	// argmax holds flat indices into x as int32.
	if err := fits("pool", s.N, s.C, s.H, s.W); err != nil {
		return err
	}
	if s.N*s.C*s.H*s.W > math.MaxInt32 {
		return fmt.Errorf("pool: %d input elements are more than int32 argmax indices reach", s.N*s.C*s.H*s.W)
	}
	return nil
}

func outSize(in, k, stride, pad int) int {
	if stride <= 0 {
		return 0
	}
	return (in+2*pad-k)/stride + 1
}

func positive(what string, names []string, v ...int) error {
	for i, x := range v {
		if x <= 0 {
			return fmt.Errorf("%s: %s is %d, want > 0", what, names[i], x)
		}
	}
	return nil
}

// fits checks that the product of sizes (a buffer's elements) stays below
// the most any device can address, so that no size overflows an int.
func fits(what string, sizes ...int) error {
	n := 1
	for _, x := range sizes {
		if x > maxAllocBytes/n {
			return fmt.Errorf("%s: a buffer of more than 2^48 elements, more than any device can address", what)
		}
		n *= x
	}
	return nil
}

// Convolver is implemented by devices that run the data movement of
// convolutions and pooling; the arithmetic is their Gemm. A separate
// interface, like BatchNormer, because only CNNs need it.
type Convolver interface {
	// Im2Col writes col, a ColRows×ColCols row-major matrix:
	// col[(c·KH+i)·KW+j, (n·OH+oh)·OW+ow] = x[n, c, oh·Stride−Pad+i, ow·Stride−Pad+j], 0 outside the image;
	// x is NCHW, or CNHW with s.ChannelMajor.
	Im2Col(col, x Buffer, s ConvShape)
	// Col2Im is its adjoint: dx (N×C×H×W, or C×N×H×W with s.ChannelMajor; overwritten) gets,
	// at every input position, the sum of the col entries Im2Col would have copied from it.
	Col2Im(dx, col Buffer, s ConvShape)
	// SwapAxes sets dst[o, j, i, k] = src[o, i, j, k] for src of shape outer×a×b×inner:
	// CNHW↔NCHW where the conv layers' maps meet a Linear (outer 1, a=C, b=N, inner=H·W)
	// and CNHW↔NHWC around batch norm over channels (outer 1, a=C, b=N·H·W, inner 1).
	SwapAxes(dst, src Buffer, outer, a, b, inner int)
	// MaxPool sets y (N×C×OH×OW) to each window's largest x (the first on ties, padding
	// never chosen; a NaN wins, the first of them, so divergence propagates as in PyTorch)
	// and the int32 argmax to its index in x (flat, n·C·H·W + …).
	MaxPool(y, argmax, x Buffer, s PoolShape)
	// MaxPoolBackward sets dx (N×C×H×W, overwritten) to the sum of dy over the windows whose
	// argmax is that position; overlapping windows (Stride < K) included; an argmax outside
	// its window (never one MaxPool made) adds nothing. Deterministic: no atomics (on a GPU,
	// a gather over the windows covering each input position).
	MaxPoolBackward(dx, dy, argmax Buffer, s PoolShape)
}

// Every device sums Col2Im's and MaxPoolBackward's contributions in the same
// order, kernel offset (i, j) ascending and window (oh, ow) ascending, from
// zero, so their results are the same bits on every device and every run.

// swapSizes checks SwapAxes's sizes and returns the elements it moves.
func swapSizes(outer, a, b, inner int) (int, error) {
	if err := positive("SwapAxes", []string{"outer", "a", "b", "inner"}, outer, a, b, inner); err != nil {
		return 0, err
	}
	if err := fits("SwapAxes", outer, a, b, inner); err != nil {
		return 0, err
	}
	return outer * a * b * inner, nil
}
