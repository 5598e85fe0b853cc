package engine

import (
	"fmt"

	"github.com/batchlab/batchlab/engine/device"
)

// Convolutional layers. Between convs, feature maps are channel-major
// (CNHW, see conv2d); the flatten layer turns the last into rows.

// convolver is the device's Convolver, or an error naming the device.
func convolver(d device.Device) (device.Convolver, error) {
	cv, ok := d.(device.Convolver)
	if !ok {
		return nil, fmt.Errorf("the %s device has no convolutions", d.Info().Kind)
	}
	return cv, nil
}

// conv2d is a 2-D convolution with bias, as im2col and one GEMM for the
// whole batch: col = Im2Col(x) is C·KH·KW × N·OH·OW, and y = W·col + b·1ᵀ
// is F × N·OH·OW, the maps channel-major (CNHW), as the GEMM leaves them:
// pooling, ReLU and the next conv's im2col read them so, and a flatten
// swaps the last ones into NCHW rows for the Linear layers, so that a
// map is swapped once, not after every conv (which cost about 7% of a
// LeNet-5 step). W is F × C·KH·KW row-major, which is PyTorch's
// (F, C, KH, KW).
type conv2d struct {
	Name string
	S    device.ConvShape // N: the most rows; ChannelMajor: the input is CNHW
	F    int              // filters
	W, B *param
	// InputGrad is false for the first layer, whose input is data.
	InputGrad bool

	cv device.Convolver
	// col is the batch's im2col matrix, kept for dW; in the backward pass
	// it then takes dcol, the gradient of col, which Col2Im folds into dx.
	col   device.Buffer
	y, dx device.Buffer
	ones  device.Buffer // N·OH·OW ones: the bias as a rank-1 GEMM
}

func newConv2d(d device.Device, name string, s device.ConvShape, filters int, inputGrad bool) (*conv2d, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cv, err := convolver(d)
	if err != nil {
		return nil, err
	}
	l := &conv2d{Name: name, S: s, F: filters, InputGrad: inputGrad, cv: cv}
	if l.W, err = newParam(d, name+".weight", filters, s.C, s.KH, s.KW); err != nil {
		return nil, err
	}
	if l.B, err = newParam(d, name+".bias", filters); err != nil {
		return nil, err
	}
	if err := allocAll(d, name, l.buffers()); err != nil {
		return nil, err
	}
	ones := make([]float32, s.ColCols())
	for i := range ones {
		ones[i] = 1
	}
	if err := device.Upload(d, l.ones, ones); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return l, nil
}

// sizedBuffer is a buffer a layer allocates: its type and elements.
type sizedBuffer struct {
	buf   *device.Buffer
	dtype device.DType
	n     int
}

// allocAll allocates bs; a layer lists its buffers once, for its
// constructor and for the memory plan (bufferBytes).
func allocAll(d device.Device, name string, bs []sizedBuffer) error {
	for _, b := range bs {
		var err error
		if *b.buf, err = d.Alloc(b.dtype, b.n); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// bufferBytes is what allocAll(bs) allocates, saturating.
func bufferBytes(bs []sizedBuffer) int64 {
	var n int64
	for _, b := range bs {
		n = satAdd(n, satMul(b.dtype.Size(), b.n))
	}
	return n
}

// buffers lists the layer's activation buffers with their sizes, for
// newConv2d to allocate and the memory plan to count.
func (l *conv2d) buffers() []sizedBuffer {
	cols := l.S.ColCols()
	f32 := device.Float32
	bs := []sizedBuffer{{&l.col, f32, l.S.ColRows() * cols}, {&l.y, f32, l.F * cols}, {&l.ones, f32, cols}}
	if l.InputGrad {
		bs = append(bs, sizedBuffer{&l.dx, f32, l.S.N * l.S.C * l.S.H * l.S.W})
	}
	return bs
}

// rowsShape is the geometry for a batch of rows images.
func (l *conv2d) rowsShape(rows int) device.ConvShape {
	s := l.S
	s.N = rows
	return s
}

func (l *conv2d) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	s := l.rowsShape(rows)
	k, cols := s.ColRows(), s.ColCols()
	l.cv.Im2Col(l.col, x, s)
	// The bias first, so that the main product adds to it in its own pass
	// over y instead of a second pass after it.
	d.Gemm(false, false, l.F, cols, 1, 1, l.B.Value, l.ones, 0, l.y) // y = b·1ᵀ
	d.Gemm(false, false, l.F, cols, k, 1, l.W.Value, l.col, 1, l.y)  // + W·col
	return l.y
}

// Backward takes dy as it gives y, channel-major.
func (l *conv2d) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	s := l.rowsShape(rows)
	k, cols := s.ColRows(), s.ColCols()
	d.Gemm(false, true, l.F, k, cols, 1, dy, l.col, 0, l.W.Grad)   // dW = dy·colᵀ
	d.Gemm(false, false, l.F, 1, cols, 1, dy, l.ones, 0, l.B.Grad) // db = dy·1
	if !l.InputGrad {
		return nil
	}
	d.Gemm(true, false, k, cols, l.F, 1, l.W.Value, dy, 0, l.col) // dcol = Wᵀ·dy
	l.cv.Col2Im(l.dx, l.col, s)
	return l.dx
}

func (l *conv2d) Params() []*param { return []*param{l.W, l.B} }
func (l *conv2d) OutputSize() int  { return l.F * l.S.OutH() * l.S.OutW() }
func (l *conv2d) fanIn() int       { return l.S.ColRows() }

func (l *conv2d) String() string {
	s := fmt.Sprintf("Conv2d(%d→%d, %d×%d", l.S.C, l.F, l.S.KH, l.S.KW)
	if l.S.Stride != 1 {
		s += fmt.Sprintf(", stride %d", l.S.Stride)
	}
	if l.S.Pad != 0 {
		s += fmt.Sprintf(", pad %d", l.S.Pad)
	}
	return s + ")"
}

// maxPool is max pooling; it saves the argmax of every window for the
// backward pass. It pools each H×W plane alike, so it takes channel-major
// maps as they come (S.N·S.C planes in either order).
type maxPool struct {
	S  device.PoolShape // N: the most rows
	cv device.Convolver

	y, argmax, dx device.Buffer
}

func newMaxPool(d device.Device, s device.PoolShape) (*maxPool, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cv, err := convolver(d)
	if err != nil {
		return nil, err
	}
	l := &maxPool{S: s, cv: cv}
	if err := allocAll(d, "max pooling", l.buffers()); err != nil {
		return nil, err
	}
	return l, nil
}

// buffers lists the layer's buffers with their types and sizes, for
// newMaxPool to allocate and the memory plan to count.
func (l *maxPool) buffers() []sizedBuffer {
	out := l.S.N * l.OutputSize()
	return []sizedBuffer{{&l.y, device.Float32, out}, {&l.argmax, device.Int32, out}, {&l.dx, device.Float32, l.S.N * l.S.C * l.S.H * l.S.W}}
}

func (l *maxPool) rowsShape(rows int) device.PoolShape {
	s := l.S
	s.N = rows
	return s
}

func (l *maxPool) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	l.cv.MaxPool(l.y, l.argmax, x, l.rowsShape(rows))
	return l.y
}

func (l *maxPool) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	l.cv.MaxPoolBackward(l.dx, dy, l.argmax, l.rowsShape(rows))
	return l.dx
}

func (l *maxPool) Params() []*param { return nil }
func (l *maxPool) OutputSize() int  { return l.S.C * l.S.OutH() * l.S.OutW() }
func (l *maxPool) String() string   { return fmt.Sprintf("MaxPool(%d)", l.S.K) }

// flatten turns the last conv stage's channel-major maps (C × rows·H·W)
// into the NCHW rows (rows × C·H·W) a Linear takes, PyTorch's flatten
// order, and the gradient back.
type flatten struct {
	C, Pixels int // channels, H·W
	cv        device.Convolver
	y, dx     device.Buffer
}

func newFlatten(d device.Device, channels, pixels, maxRows int) (*flatten, error) {
	cv, err := convolver(d)
	if err != nil {
		return nil, err
	}
	l := &flatten{C: channels, Pixels: pixels, cv: cv}
	if err := allocAll(d, "flatten", l.buffers(maxRows)); err != nil {
		return nil, err
	}
	return l, nil
}

// buffers lists the layer's buffers, for newFlatten and the memory plan.
func (l *flatten) buffers(maxRows int) []sizedBuffer {
	n := maxRows * l.C * l.Pixels
	return []sizedBuffer{{&l.y, device.Float32, n}, {&l.dx, device.Float32, n}}
}

func (l *flatten) Forward(d device.Device, x device.Buffer, rows int) device.Buffer {
	l.cv.SwapAxes(l.y, x, 1, l.C, rows, l.Pixels)
	return l.y
}

func (l *flatten) Backward(d device.Device, dy device.Buffer, rows int) device.Buffer {
	l.cv.SwapAxes(l.dx, dy, 1, rows, l.C, l.Pixels)
	return l.dx
}

func (l *flatten) Params() []*param { return nil }
func (l *flatten) OutputSize() int  { return l.C * l.Pixels }
func (l *flatten) String() string   { return "Flatten" }
