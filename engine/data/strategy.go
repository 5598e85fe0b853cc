package data

import (
	"fmt"
	"slices"
	"strings"

	"github.com/batchlab/batchlab/engine/device"
)

// Mode is how a batch reaches the device.
type Mode string

const (
	// Pageable assembles the batch in ordinary Go memory and copies it
	// synchronously; a GPU driver stages such memory through a pinned
	// buffer of its own, one more copy.
	Pageable Mode = "pageable"
	// Pinned assembles the batch in page-locked memory (AllocHost), which
	// the GPU reads directly; still a synchronous copy.
	Pinned Mode = "pinned"
	// PinnedAsync double-buffers pinned staging and copies asynchronously on
	// the copy stream, so the next batch moves while this one computes.
	PinnedAsync Mode = "pinned-async"
	// Resident uploads the whole dataset once, as uint8; per batch only the
	// int32 indices cross, and the device gathers and normalizes the rows.
	Resident Mode = "resident"
)

// Modes lists every mode, in the order results are shown.
func Modes() []Mode { return []Mode{Pageable, Pinned, PinnedAsync, Resident} }

// Strategy is a transfer strategy: a mode and the dtype the pixels cross
// as. Uint8 moves the raw bytes (4× fewer) and normalizes them on the device
// with NormalizeBytes; Resident always does. The zero Strategy is the
// default, pageable float32. In JSON and flags it is its name (String,
// ParseStrategy).
type Strategy struct {
	Mode  Mode
	DType device.DType // Float32 or Uint8
}

// resolved is s with the zero mode read as Pageable.
func (s Strategy) resolved() Strategy {
	if s.Mode == "" {
		s.Mode = Pageable
	}
	return s
}

// Validate refuses a strategy ParseStrategy would not return: an unknown
// mode or dtype, or resident with float32 pixels.
func (s Strategy) Validate() error {
	s = s.resolved()
	if !slices.Contains(Modes(), s.Mode) {
		return badStrategy(string(s.Mode), "unknown mode")
	}
	if s.DType != device.Float32 && s.DType != device.Uint8 {
		return badStrategy(s.String(), fmt.Sprintf("pixels cross as float32 or uint8, not %s", s.DType))
	}
	if s.Mode == Resident && s.DType != device.Uint8 {
		return badStrategy(s.String(), "resident keeps the dataset on the device as uint8")
	}
	return nil
}

// MarshalText writes the strategy's name.
func (s Strategy) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name as ParseStrategy does.
func (s *Strategy) UnmarshalText(b []byte) error {
	var err error
	*s, err = ParseStrategy(string(b))
	return err
}

// Strategies lists the seven strategies, the float32 ones first.
func Strategies() []Strategy {
	var all []Strategy
	for _, dt := range []device.DType{device.Float32, device.Uint8} {
		for _, m := range Modes() {
			if m != Resident || dt == device.Uint8 {
				all = append(all, Strategy{m, dt})
			}
		}
	}
	return all
}

// String is the strategy's name as ParseStrategy reads it: the mode, with
// ",uint8" for uint8 pixels ("pinned-async,uint8"), except that pageable
// uint8 is just "uint8" and resident needs no suffix.
func (s Strategy) String() string {
	s = s.resolved()
	switch {
	case s.DType != device.Uint8 || s.Mode == Resident:
		return string(s.Mode)
	case s.Mode == Pageable:
		return "uint8"
	}
	return string(s.Mode) + ",uint8"
}

// ParseStrategy reads a strategy name: a mode and/or a dtype separated by a
// comma, in any order ("pinned-async,uint8", "uint8", "resident");
// omitted, the mode is pageable and the dtype float32 (uint8 for
// resident). "" is pageable.
func ParseStrategy(name string) (Strategy, error) {
	var s Strategy
	var haveMode, haveType bool
	if name != "" {
		for _, word := range strings.Split(name, ",") {
			switch w := strings.TrimSpace(word); w {
			case string(Pageable), string(Pinned), string(PinnedAsync), string(Resident):
				if haveMode {
					return s, badStrategy(name, "more than one mode")
				}
				s.Mode, haveMode = Mode(w), true
			case "float32", "uint8":
				if haveType {
					return s, badStrategy(name, "more than one dtype")
				}
				s.DType, haveType = device.Float32, true
				if w == "uint8" {
					s.DType = device.Uint8
				}
			default:
				return s, badStrategy(name, fmt.Sprintf("%q is neither a mode nor a dtype", w))
			}
		}
	}
	if !haveMode {
		s.Mode = Pageable
	}
	if s.Mode == Resident {
		if haveType && s.DType != device.Uint8 {
			return s, badStrategy(name, "resident keeps the dataset on the device as uint8")
		}
		s.DType = device.Uint8
	}
	return s, nil
}

func badStrategy(name, why string) error {
	return fmt.Errorf("unknown transfer strategy %q (%s): want pageable, pinned, pinned-async or resident, "+
		"optionally with \",uint8\" to move raw bytes (e.g. pinned-async,uint8; uint8 alone is pageable,uint8)", name, why)
}

// StrategyNames lists the names of Strategies, for help texts.
func StrategyNames() []string {
	var names []string
	for _, s := range Strategies() {
		names = append(names, s.String())
	}
	return names
}

// BatchTraffic is what one batch of rows samples of features pixels moves
// host→device under s: the pixels and the int32 labels (two copies), or
// for Resident only the int32 indices (one copy).
func (s Strategy) BatchTraffic(rows, features int) (bytes int64, copies int) {
	if s.Mode == Resident {
		return 4 * int64(rows), 1
	}
	return int64(rows) * (int64(features*s.DType.Size()) + 4), 2
}

// The pixel normalization, x = pixelScale·v + pixelShift for a byte v, the
// same on the host and in the device's NormalizeBytes, so that every
// strategy feeds the model bit-identical inputs.
const (
	pixelScale float32 = 1.0 / 255
	pixelShift float32 = 0
)

// Normalize is the host's pixel normalization (see PixelScale).
func Normalize(v uint8) float32 { return pixelScale*float32(v) + pixelShift }
