package engine

import (
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// SetTrace sends a span for every training step, kernel group (forward with
// the loss, backward, update), evaluation and copy to tl; nil stops tracing.
func (t *Trainer) SetTrace(tl *trace.Timeline) {
	t.trace = tl
	t.trainLoader.Trace(tl)
	t.evalLoad.Trace(tl)
}

// traceEval writes the span of an evaluation of ds that began at start (a
// Mark), on the steps track: it falls between an epoch's training steps and
// the next epoch's, so the spans there still nest.
func (t *Trainer) traceEval(start device.Event, ds *data.Dataset) error {
	tl := t.trace
	if tl == nil {
		return nil
	}
	tl.Span(trace.Steps, "evaluate", start, tl.Mark(), map[string]any{"dataset": ds.Name, "samples": ds.Len()})
	return tl.Flush()
}

// traceStep writes the spans of the step just synchronized, from the
// trainer's events (see Epoch) and the loader's.
func (t *Trainer) traceStep(epoch, step, rows int) error {
	tl := t.trace
	if tl == nil {
		return nil
	}
	e := t.events
	tl.Span(trace.Steps, "step", e[0], e[5], map[string]any{"epoch": epoch, "step": step, "rows": rows})
	tl.Span(trace.Kernels, "forward", e[1], e[2], nil)
	tl.Span(trace.Kernels, "backward", e[2], e[3], nil)
	tl.Span(trace.Kernels, "update", e[3], e[4], nil)
	return tl.Flush()
}
