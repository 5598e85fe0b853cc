// Package trace writes Chrome trace-event JSON (the format Perfetto and
// chrome://tracing open) from device events, so that the copies, kernel
// groups and steps of a run can be seen on one time axis, on any device.
//
// A Timeline places device events on that axis: each event's time is its
// distance from an origin event recorded when the timeline started
// (Device.EventElapsed), so GPU spans carry GPU time. Host work (assembling
// a batch in memory) is timed with the host clock from the same origin; the
// two clocks agree to within a synchronization at the start.
//
// The format: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
package trace

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/batchlab/batchlab/engine/device"
)

// Track is a row of the trace view. Spans on one track must nest, so each
// kind of work has its own.
type Track int

const (
	Steps   Track = 1 + iota // one span per training step or measured batch
	Kernels                  // device work: forward, backward, update, gather, normalize
	Copies                   // host→device copies
	Host                     // host work: assembling a batch in memory
)

var trackNames = map[Track]string{Steps: "steps", Kernels: "kernels", Copies: "copies", Host: "host"}

// event is one trace event; "X" is a complete span, "M" metadata.
type event struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"` // microseconds
	Dur  float64        `json:"dur,omitempty"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// Writer streams trace events to a file as one JSON object,
// {"traceEvents": [...]}, so a long run never holds its trace in memory.
type Writer struct {
	w      *bufio.Writer
	closer io.Closer
	n      int
	err    error
}

// Create writes a trace to path.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	w := NewWriter(f)
	w.closer = f
	return w, nil
}

// NewWriter writes a trace to w.
func NewWriter(w io.Writer) *Writer {
	tw := &Writer{w: bufio.NewWriter(w)}
	_, tw.err = tw.w.WriteString(`{"displayTimeUnit":"ms","traceEvents":[`)
	return tw
}

func (w *Writer) write(e event) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		w.err = err
		return
	}
	if w.n > 0 {
		w.w.WriteByte(',')
	}
	w.w.WriteByte('\n')
	_, w.err = w.w.Write(b)
	w.n++
}

// Close ends the JSON object and closes the file; it returns the first
// error met while writing.
func (w *Writer) Close() error {
	if w.err == nil {
		_, w.err = w.w.WriteString("\n]}\n")
	}
	err := errors.Join(w.err, w.w.Flush())
	if w.closer != nil {
		err = errors.Join(err, w.closer.Close())
	}
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	return nil
}

// Timeline turns device events into spans of a trace. A nil *Timeline is
// valid and does nothing, so code can trace unconditionally.
//
// Spans are queued with the events that bound them and written by Flush,
// which waits for the events; the caller must not record a queued event
// again before Flush.
type Timeline struct {
	d       device.Device
	w       *Writer
	origin  device.Event
	start   time.Time // host time of origin
	pending []span
	marks   []device.Event // recorded by Mark, returned to free by Flush
	free    []device.Event
}

type span struct {
	track    Track
	name     string
	from, to device.Event
	args     map[string]any
}

// NewTimeline starts a timeline on d, written to w. It synchronizes d so
// that the origin event and the host clock start together.
func NewTimeline(d device.Device, w *Writer, process string) (*Timeline, error) {
	origin, err := d.NewEvent()
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := d.Sync(); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	d.RecordEvent(origin)
	tl := &Timeline{d: d, w: w, origin: origin, start: time.Now()}
	w.write(event{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]any{"name": process}})
	for t := Steps; t <= Host; t++ {
		w.write(event{Name: "thread_name", Ph: "M", Pid: 1, Tid: int(t), Args: map[string]any{"name": trackNames[t]}})
		w.write(event{Name: "thread_sort_index", Ph: "M", Pid: 1, Tid: int(t), Args: map[string]any{"sort_index": int(t)}})
	}
	return tl, nil
}

// Mark records an event on the device now and returns it (nil for a nil
// timeline). Marks are pooled: Flush recycles them.
func (tl *Timeline) Mark() device.Event {
	if tl == nil {
		return nil
	}
	var e device.Event
	if n := len(tl.free); n > 0 {
		e, tl.free = tl.free[n-1], tl.free[:n-1]
	} else {
		var err error
		if e, err = tl.d.NewEvent(); err != nil {
			if tl.w.err == nil {
				tl.w.err = err
			}
			return nil
		}
	}
	tl.d.RecordEvent(e)
	tl.marks = append(tl.marks, e)
	return e
}

// Span queues a span from event from to event to; args (may be nil) are
// shown with it.
func (tl *Timeline) Span(track Track, name string, from, to device.Event, args map[string]any) {
	if tl == nil || from == nil || to == nil {
		return
	}
	tl.pending = append(tl.pending, span{track, name, from, to, args})
}

// HostSpan writes a span of host work timed by the host clock.
func (tl *Timeline) HostSpan(name string, start, end time.Time, args map[string]any) {
	if tl == nil {
		return
	}
	tl.w.write(event{Name: name, Cat: trackNames[Host], Ph: "X", Pid: 1, Tid: int(Host),
		Ts: micros(start.Sub(tl.start)), Dur: micros(end.Sub(start)), Args: args})
}

// Flush waits for the queued spans' events and writes the spans.
func (tl *Timeline) Flush() error {
	if tl == nil {
		return nil
	}
	for _, s := range tl.pending {
		from, err := tl.d.EventElapsed(tl.origin, s.from)
		if err != nil {
			return fmt.Errorf("trace: %s: %w", s.name, err)
		}
		to, err := tl.d.EventElapsed(tl.origin, s.to)
		if err != nil {
			return fmt.Errorf("trace: %s: %w", s.name, err)
		}
		tl.w.write(event{Name: s.name, Cat: trackNames[s.track], Ph: "X", Pid: 1, Tid: int(s.track),
			Ts: micros(from), Dur: micros(max(to-from, 0)), Args: s.args})
	}
	tl.pending = tl.pending[:0]
	tl.free = append(tl.free, tl.marks...)
	tl.marks = tl.marks[:0]
	if tl.w.err != nil {
		return fmt.Errorf("trace: %w", tl.w.err)
	}
	return nil
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
