package trace

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/batchlab/batchlab/engine/device"
)

// TestTimeline: spans from device events and host spans come out as valid
// trace-event JSON, in order, on their tracks; marks are recycled.
func TestTimeline(t *testing.T) {
	d := device.NewCPU()
	var buf strings.Builder
	w := NewWriter(&buf)
	tl, err := NewTimeline(d, w, "test")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a := tl.Mark()
		time.Sleep(time.Millisecond)
		b := tl.Mark()
		tl.Span(Copies, "copy", a, b, map[string]any{"i": i})
		tl.HostSpan("assemble", time.Now(), time.Now().Add(time.Microsecond), nil)
		if err := tl.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if len(tl.free) != 2 {
		t.Errorf("%d events pooled, want 2 (reused each round)", len(tl.free))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var file struct {
		DisplayTimeUnit string
		TraceEvents     []event
	}
	if err := json.Unmarshal([]byte(buf.String()), &file); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, buf.String())
	}
	var copies []event
	for _, e := range file.TraceEvents {
		if e.Name == "copy" {
			copies = append(copies, e)
		}
	}
	if len(copies) != 3 {
		t.Fatalf("%d copy spans, want 3", len(copies))
	}
	for i, e := range copies {
		if e.Ph != "X" || e.Tid != int(Copies) || e.Dur < 900 || e.Args["i"] != float64(i) || (i > 0 && e.Ts <= copies[i-1].Ts) {
			t.Errorf("copy span %d: %+v", i, e)
		}
	}
}

// TestNilTimeline: code traces unconditionally; a nil timeline ignores it.
func TestNilTimeline(t *testing.T) {
	var tl *Timeline
	tl.Span(Steps, "step", tl.Mark(), tl.Mark(), nil)
	tl.HostSpan("x", time.Now(), time.Now(), nil)
	if err := tl.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyTrace: a trace with no spans is still a valid file.
func TestEmptyTrace(t *testing.T) {
	var buf strings.Builder
	if err := NewWriter(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &v); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
}
