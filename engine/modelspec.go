package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/batchlab/batchlab/engine/device"
)

// ModelKind names a family of architectures.
type ModelKind string

const (
	// KindMLP is Linear layers with ReLU between them (mlp:512,512).
	KindMLP ModelKind = "mlp"
	// KindLeNet5 is LeCun et al.'s LeNet-5 as PyTorch tutorials write it:
	// conv 6@5×5 pad 2 → ReLU → max pool 2 → conv 16@5×5 → ReLU → max
	// pool 2 → Linear 120 → ReLU → Linear 84 → ReLU → Linear to the classes.
	KindLeNet5 ModelKind = "lenet5"
	// KindCNN is conv 3×3 pad 1 → ReLU → max pool 2 for each width of the
	// spec (cnn:32,64), then one Linear to the classes.
	KindCNN ModelKind = "cnn"
)

// ModelSpec is an architecture as --model writes it.
type ModelSpec struct {
	Kind   ModelKind
	Widths []int // mlp: the hidden widths; cnn: the conv widths; lenet5: none
}

// ParseModel reads mlp:W,W,…, lenet5 or cnn:F,F,… .
func ParseModel(s string) (ModelSpec, error) {
	kind, args, hasArgs := strings.Cut(strings.TrimSpace(s), ":")
	m := ModelSpec{Kind: ModelKind(kind)}
	switch m.Kind {
	case KindLeNet5:
		if hasArgs {
			return m, fmt.Errorf("model %q: lenet5 takes no widths", s)
		}
		return m, nil
	case KindMLP, KindCNN:
		if !hasArgs || args == "" {
			return m, fmt.Errorf("model %q: %s needs its widths, e.g. %s:%s", s, kind, kind, map[ModelKind]string{KindMLP: "512,512", KindCNN: "32,64"}[m.Kind])
		}
		for _, f := range strings.Split(args, ",") {
			w, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || w <= 0 {
				return m, fmt.Errorf("model %q: width %q is not a positive whole number", s, f)
			}
			m.Widths = append(m.Widths, w)
		}
		return m, nil
	}
	return m, fmt.Errorf("unknown model %q (want mlp:W,W,…, lenet5 or cnn:F,F,…)", s)
}

// String is the spec in the form ParseModel reads.
func (m ModelSpec) String() string {
	if len(m.Widths) == 0 {
		return string(m.Kind)
	}
	ws := make([]string, len(m.Widths))
	for i, w := range m.Widths {
		ws[i] = strconv.Itoa(w)
	}
	return string(m.Kind) + ":" + strings.Join(ws, ",")
}

// WithModel returns c training the model spec names. An MLP is written as
// Hidden, as before there were specs, so its results and checkpoints read
// the same whichever flag chose it; any other model is written as its spec
// in Model, and Hidden is cleared.
func (c Config) WithModel(spec string) (Config, error) {
	m, err := ParseModel(spec)
	if err != nil {
		return c, err
	}
	if m.Kind == KindMLP {
		c.Model, c.Hidden = "", m.Widths
	} else {
		c.Model, c.Hidden = m.String(), nil
	}
	return c, nil
}

// ModelSpec is the architecture c trains: Model, or the MLP of Hidden.
func (c Config) ModelSpec() (ModelSpec, error) {
	if c.Model == "" {
		return ModelSpec{Kind: KindMLP, Widths: slices.Clone(c.Hidden)}, nil
	}
	m, err := ParseModel(c.Model)
	if err != nil {
		return m, err
	}
	switch {
	case m.Kind == KindMLP:
		return m, fmt.Errorf("model %q: an MLP's widths go in hidden (Config.WithModel puts them there)", c.Model)
	case len(c.Hidden) > 0:
		return m, fmt.Errorf("hidden widths %v and model %s: a CNN's layers are all in its spec", c.Hidden, c.Model)
	}
	return m, nil
}

// convStage is one conv → [batch norm →] ReLU → max pool stage.
type convStage struct{ Filters, Kernel, Pad int }

// poolSize is the window and stride of every stage's max pooling.
const poolSize = 2

// cnnArch describes a CNN on Channels×Side×Side images: its conv stages,
// then Linear layers of the Hidden widths with ReLU, then a Linear to the
// classes; with BatchNorm (over ghost batches of GhostBatch samples, if
// set) after each conv, over its channels.
type cnnArch struct {
	Channels, Side int
	Convs          []convStage
	Hidden         []int
	Classes        int
	BatchNorm      bool
	GhostBatch     int
}

// cnnOf is the CNN of spec m on images of features pixels, one channel.
func cnnOf(m ModelSpec, features, classes int, batchNorm bool, ghost int) (cnnArch, error) {
	side := int(math.Round(math.Sqrt(float64(features))))
	if side*side != features {
		return cnnArch{}, fmt.Errorf("model %s takes square one-channel images; %d features are not a square", m, features)
	}
	a := cnnArch{Channels: 1, Side: side, Classes: classes, BatchNorm: batchNorm || ghost > 0, GhostBatch: ghost}
	switch m.Kind {
	case KindLeNet5:
		a.Convs, a.Hidden = []convStage{{6, 5, 2}, {16, 5, 0}}, []int{120, 84}
	case KindCNN:
		for _, f := range m.Widths {
			a.Convs = append(a.Convs, convStage{f, 3, 1})
		}
	default:
		return cnnArch{}, fmt.Errorf("model %s is not a CNN", m)
	}
	// Each stage must leave a map a pooling window fits in.
	s := side
	for i, c := range a.Convs {
		s = s + 2*c.Pad - c.Kernel + 1
		if s < poolSize {
			return cnnArch{}, fmt.Errorf("model %s: conv %d leaves a %d×%d map of the %d×%d image, too small to pool", m, i+1, max(s, 0), max(s, 0), side, side)
		}
		s /= poolSize
	}
	return a, nil
}

// stageShapes walks the stages for a batch of n images: the convolution's
// geometry of each, in order, and the size of the last map
// (channels·side·side), which the first Linear takes. The first conv reads
// the data's NCHW images, every later one the channel-major maps the stage
// before leaves (conv2d).
func (a cnnArch) stageShapes(n int) (convs []device.ConvShape, flat int) {
	c, s := a.Channels, a.Side
	for i, st := range a.Convs {
		convs = append(convs, device.ConvShape{N: n, C: c, H: s, W: s, KH: st.Kernel, KW: st.Kernel, Stride: 1, Pad: st.Pad, ChannelMajor: i > 0})
		c, s = st.Filters, (s+2*st.Pad-st.Kernel+1)/poolSize
	}
	return convs, c * s * s
}

// architecture is a model's structure, before it is built.
type architecture interface {
	// build allocates the model on d for up to maxRows rows.
	build(d device.Device, maxRows int, seed uint64) (*Model, error)
	// plan is what build allocates, without allocating: the parameters
	// (value, gradient and velocity, with Adam a second moment) and
	// statistics, the activations, and state, the floats a checkpoint
	// copies to the host.
	plan(maxRows int, adam bool) (f Footprint, state int64)
	// paramCount is the number of weights and biases (of the Linear and
	// Conv2d layers: batch normalization's are left out).
	paramCount() int64
}

func (a mlpArch) build(d device.Device, maxRows int, seed uint64) (*Model, error) {
	return newMLP(d, a, maxRows, seed)
}

func (a cnnArch) build(d device.Device, maxRows int, seed uint64) (*Model, error) {
	return newCNN(d, a, maxRows, seed)
}

// arch is the architecture c trains on data of features and classes.
func (c Config) arch(features, classes int) (architecture, error) {
	m, err := c.ModelSpec()
	if err != nil {
		return nil, err
	}
	if m.Kind == KindMLP {
		return mlpArch{Widths: append(append([]int{features}, m.Widths...), classes), BatchNorm: c.BatchNorm, GhostBatch: c.GhostBatch}, nil
	}
	return cnnOf(m, features, classes, c.BatchNorm, c.GhostBatch)
}
