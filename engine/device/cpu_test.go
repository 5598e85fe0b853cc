package device_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/device/devicetest"
)

func TestCPUConformance(t *testing.T) {
	devicetest.Run(t, func(*testing.T) device.Device { return device.NewCPU() })
}

func TestOpen(t *testing.T) {
	d, err := device.Open("cpu")
	if err != nil || d.Info().Kind != "cpu" {
		t.Fatalf("Open(cpu) = %v, %v", d, err)
	}
	if _, err := device.Open("tpu"); err == nil {
		t.Error("Open(tpu) did not fail")
	}
}

// requireError checks that d's first error names the call and says why.
func requireError(t *testing.T, d device.Device, what, call, why string) {
	t.Helper()
	err := d.Sync()
	if err == nil {
		t.Fatalf("%s did not fail", what)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, call+":") || !strings.Contains(msg, why) {
		t.Errorf("%s: error %q, want %q naming %s", what, msg, why, call)
	}
}

func TestCPUUseAfterFree(t *testing.T) {
	d := device.NewCPU()
	b, _ := d.Alloc(device.Float32, 4)
	d.Free(b)
	if err := device.Upload(d, b, []float32{1}); err == nil || !strings.Contains(err.Error(), "after Free") {
		t.Errorf("copying into a freed buffer gave %v", err)
	}
	d.ReLU(b, b, 4)
	requireError(t, d, "ReLU on a freed buffer", "ReLU", "after Free")
}

// otherBuffer is a buffer of some other kind of device.
type otherBuffer struct{}

func (otherBuffer) DType() device.DType { return device.Float32 }
func (otherBuffer) Len() int            { return 4 }

// TestCPUBufferOfAnotherDevice: a buffer belongs to the device that made
// it, even another CPU device.
func TestCPUBufferOfAnotherDevice(t *testing.T) {
	for _, c := range []struct {
		what  string
		other device.Buffer
	}{{"another kind of device", otherBuffer{}}, {"another CPU device", mustAlloc(t, device.NewCPU())}} {
		d := device.NewCPU()
		if err := device.Upload(d, c.other, []float32{1}); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Errorf("copying into a buffer of %s gave %v", c.what, err)
		}
		b := mustAlloc(t, d)
		d.ReLU(b, c.other, 4)
		requireError(t, d, "ReLU on a buffer of "+c.what, "ReLU", "does not belong to this CPU device")
	}
}

func mustAlloc(t *testing.T, d device.Device) device.Buffer {
	t.Helper()
	b, err := d.Alloc(device.Float32, 4)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInfoReadsOldKeys: results saved before Info's keys were snake_case
// keep their device's memory when read back; the new keys win.
func TestInfoReadsOldKeys(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"Kind":"cpu","Name":"AMD EPYC","TotalMemory":25275420672,"Threads":2}`, "cpu AMD EPYC 25275420672 2"},
		{`{"kind":"cpu","name":"AMD EPYC","total_memory":25275420672,"threads":2}`, "cpu AMD EPYC 25275420672 2"},
		{`{"kind":"cuda","TotalMemory":1,"total_memory":2}`, "cuda  2 0"},
	} {
		var i device.Info
		if err := json.Unmarshal([]byte(tc.json), &i); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s %s %d %d", i.Kind, i.Name, i.TotalMemory, i.Threads); got != tc.want {
			t.Errorf("%s: read %q, want %q", tc.json, got, tc.want)
		}
	}
}
