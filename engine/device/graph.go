package device

import "fmt"

// Grapher is implemented by devices that can record a sequence of calls once
// and replay it with a single launch: CUDA graphs. At small batches a
// training step is dozens of tiny kernels whose launch cost exceeds their
// work; a replay pays it once. The trainer uses it for Config.Graph, and
// refuses Graph on a device without it (the CPU has no launch cost to save).
type Grapher interface {
	// Capture records the compute fn issues (Gemm, the kernel primitives,
	// Zero) as a graph without running it. Buffers, sizes and scalars are
	// fixed at capture. Only the slots of SoftmaxCrossEntropy and
	// CountCorrect move: each Launch adds its base to them, so one graph
	// serves every step of an epoch. Calls that copy, wait, allocate or
	// record events are errors inside fn. An error inside fn becomes the
	// device's error and Capture's.
	Capture(fn func()) (Graph, error)
	// Launch replays g after the work issued before it, with the slots at
	// base plus their captured values. Like any compute call it records its
	// error (e.g. a slot beyond its buffer) as the device's.
	Launch(g Graph, base int)
}

// Graph is a captured sequence of calls. It lives as long as its device.
// Only a Grapher makes graphs: the unexported method keeps any other value
// from passing for one.
type Graph interface{ deviceGraph() }

// capture is the state of a graph capture, kept by kernelOps: per-step
// results go to slot + *base, and the slots used are checked at each replay.
type capture struct {
	base  uint64 // the device int32 a replay's base is written to
	slots []slotUse
}

// slotUse is a per-step result written by a captured call.
type slotUse struct {
	op   string
	len  int // elements of the result buffer
	slot int
}

// checkReplay validates the slots a replay at base writes.
func checkReplay(slots []slotUse, base int) error {
	for _, s := range slots {
		if base < 0 || s.slot+base >= s.len {
			return fmt.Errorf("Launch: %s's slot %d + base %d outside a buffer of %d", s.op, s.slot, base, s.len)
		}
	}
	return nil
}
