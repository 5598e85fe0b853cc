package devicetest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

// graphStep is a small training step: forward through one layer, loss,
// backward and update, with its per-step results at slot and the
// divergence guard of the loss and the update.
type graphStep struct {
	x, labels, w, v, h, grad, gw, losses, counts, guard device.Buffer
}

const graphRows, graphCols, graphSteps = 37, 10, 4

func newGraphStep(t *testing.T, d device.Device) *graphStep {
	r := rng(15)
	s := &graphStep{
		x:      upload(t, d, device.Float32, make([]float32, graphRows*graphCols)),
		labels: upload(t, d, device.Int32, randLabels(r, graphRows, graphCols)),
		w:      upload(t, d, device.Float32, randFloats(r, graphCols*graphCols)),
		losses: upload(t, d, device.Float32, []float32{-1, -1, -1, -1}),
		counts: upload(t, d, device.Int32, []int32{-1, -1, -1, -1}),
		guard:  upload(t, d, device.Int32, []int32{0}),
	}
	for _, b := range []struct {
		buf *device.Buffer
		n   int
	}{{&s.v, graphCols * graphCols}, {&s.h, graphRows * graphCols}, {&s.grad, graphRows * graphCols}, {&s.gw, graphCols * graphCols}} {
		var err error
		if *b.buf, err = d.Alloc(device.Float32, b.n); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *graphStep) run(d device.Device, slot int) {
	d.Zero(s.h)
	d.Gemm(false, false, graphRows, graphCols, graphCols, 1, s.x, s.w, 1, s.h)
	d.ReLU(s.h, s.h, graphRows*graphCols)
	d.SoftmaxCrossEntropy(s.grad, s.losses, s.h, s.labels, s.guard, slot, graphRows, graphCols, 1.0/graphRows)
	d.CountCorrect(s.counts, s.h, s.labels, slot, graphRows, graphCols)
	d.ReLUBackward(s.grad, s.grad, s.h, graphRows*graphCols)
	d.Gemm(true, false, graphCols, graphCols, graphRows, 1, s.x, s.grad, 0, s.gw)
	d.MomentumSGD(s.w, s.gw, s.v, s.guard, graphCols*graphCols, 0.5, 0.9, 0.01)
}

// checkGraphs checks a device that implements device.Grapher (others skip it):
// capturing runs nothing; each replay computes what the same calls issued
// directly compute, on the buffers' contents at replay time, with its
// per-step results at base + slot; a non-finite loss in a replay sets the
// guard to base + slot + 1 and makes that replay's update and later ones
// no-ops; a replay whose slots fall outside their
// buffer is an error, and so is a call inside a capture that cannot be part
// of a graph.
func checkGraphs(t *testing.T, newDevice NewDevice) {
	d := newDevice(t)
	g := d.(device.Grapher) // Run checks graphs only on a Grapher
	ref := newDevice(t)     // the same calls, issued directly
	s, rs := newGraphStep(t, d), newGraphStep(t, ref)
	before := download[float32](t, d, s.w, graphCols*graphCols)
	graph, err := g.Capture(func() { s.run(d, 0) })
	if err != nil {
		t.Fatalf("Capture: %v", err)
	}
	if got := download[float32](t, d, s.w, graphCols*graphCols); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatal("Capture ran the calls it captured")
	}
	r := rng(16)
	for _, base := range []int{2, 0, 3, 1} { // replays may go to any slot
		x := randFloats(r, graphRows*graphCols)
		if err := device.Upload(d, s.x, x); err != nil {
			t.Fatal(err)
		}
		if err := device.Upload(ref, rs.x, x); err != nil {
			t.Fatal(err)
		}
		g.Launch(graph, base)
		rs.run(ref, base)
	}
	for _, c := range []struct {
		name string
		a, b device.Buffer
		n    int
	}{{"w", s.w, rs.w, graphCols * graphCols}, {"velocity", s.v, rs.v, graphCols * graphCols}, {"losses", s.losses, rs.losses, graphSteps}} {
		want := download[float32](t, ref, c.b, c.n)
		wide := make([]float64, c.n)
		for i, v := range want {
			wide[i] = float64(v)
		}
		closeEnough(t, "replayed "+c.name, download[float32](t, d, c.a, c.n), wide, 1e-6, 1e-6)
	}
	if got, want := download[int32](t, d, s.counts, graphSteps), download[int32](t, ref, rs.counts, graphSteps); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replayed counts %v, want %v", got, want)
	}
	if got := download[int32](t, d, s.guard, 1); got[0] != 0 {
		t.Errorf("finite replays set the guard to %d", got[0])
	}
	w, v := download[float32](t, d, s.w, graphCols*graphCols), download[float32](t, d, s.v, graphCols*graphCols)
	for i, x := range [][]float32{make([]float32, graphRows*graphCols), randFloats(r, graphRows*graphCols)} {
		if i == 0 {
			x[0] = float32(math.NaN()) // a NaN logit: the loss is NaN
		}
		if err := device.Upload(d, s.x, x); err != nil {
			t.Fatal(err)
		}
		g.Launch(graph, 2-i) // the NaN at base 2, then a finite step at base 1
	}
	if got := download[int32](t, d, s.guard, 1); got[0] != 3 {
		t.Errorf("a NaN loss replayed at base 2 set the guard to %d, want 3", got[0])
	}
	if got := download[float32](t, d, s.w, graphCols*graphCols); fmt.Sprint(got) != fmt.Sprint(w) {
		t.Error("replayed updates changed w after a NaN loss")
	}
	if got := download[float32](t, d, s.v, graphCols*graphCols); fmt.Sprint(got) != fmt.Sprint(v) {
		t.Error("replayed updates changed the velocity after a NaN loss")
	}

	g.Launch(graph, graphSteps) // slot 0 + base 4 is outside 4 losses
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), "Launch:") {
		t.Errorf("a replay with its slot outside the buffer gave %v, want an error naming Launch", err)
	}

	captureRefuses(t, newDevice)
}

// captureRefuses checks that each call that cannot be part of a graph
// fails the capture it is made in, with an error naming the call, and
// leaves that error as the device's.
func captureRefuses(t *testing.T, newDevice NewDevice) {
	type resources struct {
		buf      device.Buffer
		host     []byte
		from, to device.Event
	}
	for _, c := range []struct {
		name string
		call func(d device.Device, r resources)
	}{
		{"Alloc", func(d device.Device, r resources) { d.Alloc(device.Float32, 4) }},
		{"Free", func(d device.Device, r resources) { d.Free(r.buf) }},
		{"CopyIn", func(d device.Device, r resources) { d.CopyIn(r.buf, r.host) }},
		{"CopyOut", func(d device.Device, r resources) { d.CopyOut(r.host, r.buf) }},
		{"CopyInAsync", func(d device.Device, r resources) { d.CopyInAsync(r.buf, r.host, r.from) }},
		{"AllocHost", func(d device.Device, r resources) { d.AllocHost(16) }},
		{"FreeHost", func(d device.Device, r resources) { d.FreeHost(r.host) }},
		{"NewEvent", func(d device.Device, r resources) { d.NewEvent() }},
		{"RecordEvent", func(d device.Device, r resources) { d.RecordEvent(r.from) }},
		{"WaitEvent", func(d device.Device, r resources) { d.WaitEvent(r.from) }},
		{"EventElapsed", func(d device.Device, r resources) { d.EventElapsed(r.from, r.to) }},
		{"Info", func(d device.Device, r resources) { d.Info() }},
		{"Sync", func(d device.Device, r resources) { d.Sync() }},
	} {
		d := newDevice(t)
		var r resources
		var err error
		r.buf = upload(t, d, device.Float32, []float32{1, 2, 3, 4})
		if r.host, err = d.AllocHost(16); err != nil {
			t.Fatal(err)
		}
		for _, e := range []*device.Event{&r.from, &r.to} {
			if *e, err = d.NewEvent(); err != nil {
				t.Fatal(err)
			}
			d.RecordEvent(*e)
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		_, err = d.(device.Grapher).Capture(func() { c.call(d, r) })
		if err == nil || !strings.Contains(err.Error(), c.name+":") {
			t.Errorf("%s inside a capture gave %v, want an error naming %s", c.name, err, c.name)
		}
		if err := d.Sync(); err == nil {
			t.Errorf("after %s failed a capture the device has no error", c.name)
		}
	}
}
