//go:build !cpu

// These tests need a CUDA GPU: without one, gorgonia.org/cu exits while the
// test binary starts. CI without a GPU only compiles them (go test -c).

package device_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/device/devicetest"
)

// newCUDA opens a fresh CUDA device, closed when the test ends.
func newCUDA(t *testing.T) device.Device {
	t.Helper()
	d, err := device.Open("cuda")
	if err != nil {
		t.Fatalf("Open(cuda): %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// TestCUDAConformance runs the checks of the primitives the CUDA device has
// so far. (devicetest.BadArguments needs ReLU and AddBias too.)
func TestCUDAConformance(t *testing.T) {
	checks := []struct {
		name string
		fn   func(*testing.T, devicetest.NewDevice)
	}{
		{"Copy", devicetest.Copy}, {"Gemm", devicetest.Gemm},
		{"Zero", devicetest.Zero}, {"Events", devicetest.Events},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newCUDA) })
	}
}

// primitiveCalls calls every compute primitive once, with valid arguments.
var primitiveCalls = map[string]func(d device.Device, f1, f2, f3, i1, i2, u device.Buffer){
	"Gemm": func(d device.Device, f1, f2, f3, _, _, _ device.Buffer) {
		d.Gemm(false, true, 2, 2, 2, 1, f1, f2, 0, f3)
	},
	"AddBias": func(d device.Device, f1, f2, _, _, _, _ device.Buffer) { d.AddBias(f1, f2, 2, 2) },
	"ReLU":    func(d device.Device, f1, f2, _, _, _, _ device.Buffer) { d.ReLU(f1, f2, 4) },
	"ReLUBackward": func(d device.Device, f1, f2, f3, _, _, _ device.Buffer) {
		d.ReLUBackward(f1, f2, f3, 4)
	},
	"SoftmaxCrossEntropy": func(d device.Device, f1, f2, f3, i1, _, _ device.Buffer) {
		d.SoftmaxCrossEntropy(f1, f2, f3, i1, 0, 2, 2, 1)
	},
	"CountCorrect": func(d device.Device, f1, _, _, i1, i2, _ device.Buffer) {
		d.CountCorrect(i2, f1, i1, 0, 2, 2)
	},
	"ColumnSum": func(d device.Device, f1, f2, _, _, _, _ device.Buffer) { d.ColumnSum(f1, f2, 2, 2, 0) },
	"MomentumSGD": func(d device.Device, f1, f2, f3, _, _, _ device.Buffer) {
		d.MomentumSGD(f1, f2, f3, 4, 0.1, 0.9, 0)
	},
	"NormalizeBytes": func(d device.Device, f1, _, _, _, _, u device.Buffer) { d.NormalizeBytes(f1, u, 4, 1, 0) },
	"GatherRows":     func(d device.Device, f1, f2, _, i1, _, _ device.Buffer) { d.GatherRows(f1, f2, i1, 2, 2) },
	"Zero":           func(d device.Device, f1, _, _, _, _, _ device.Buffer) { d.Zero(f1) },
}

// callPrimitive runs one primitive on fresh zeroed buffers (labels and
// indices 0) and returns the device's error.
func callPrimitive(t *testing.T, d device.Device, name string) error {
	t.Helper()
	var bufs []device.Buffer
	for _, dt := range []device.DType{device.Float32, device.Float32, device.Float32, device.Int32, device.Int32, device.Uint8} {
		b, err := d.Alloc(dt, 4)
		if err != nil {
			t.Fatalf("Alloc: %v", err)
		}
		bufs = append(bufs, b)
	}
	primitiveCalls[name](d, bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5])
	return d.Sync()
}

// TestCUDAMissingPrimitives checks that MissingPrimitives lists exactly the
// primitives that fail with ErrUnsupported, naming the primitive, and that
// the calls are valid (the CPU device runs each of them).
func TestCUDAMissingPrimitives(t *testing.T) {
	missing := device.Missing(newCUDA(t))
	if len(missing) == 0 {
		t.Fatal("MissingPrimitives is empty; drop this test's expectation of a partial device")
	}
	for _, name := range missing {
		if primitiveCalls[name] == nil {
			t.Errorf("MissingPrimitives lists %q, which is not a compute primitive", name)
		}
	}
	for name := range primitiveCalls {
		if err := callPrimitive(t, device.NewCPU(), name); err != nil {
			t.Fatalf("%s on the CPU: %v (the test's arguments are wrong)", name, err)
		}
		err := callPrimitive(t, newCUDA(t), name)
		listed := slices.Contains(missing, name)
		switch {
		case listed && !errors.Is(err, device.ErrUnsupported):
			t.Errorf("%s is listed as missing but gave %v, not ErrUnsupported", name, err)
		case listed && !strings.Contains(err.Error(), name+":"):
			t.Errorf("%s: error %q does not name the primitive", name, err)
		case !listed && err != nil:
			t.Errorf("%s is not listed as missing but failed: %v", name, err)
		}
	}
}

func TestCUDAOpen(t *testing.T) {
	if device.Default() != "cuda" {
		t.Errorf("Default() = %q on a machine with a GPU", device.Default())
	}
	infos := device.Available()
	if len(infos) < 2 || infos[0].Kind != "cpu" || infos[1].Kind != "cuda" {
		t.Fatalf("Available() = %v, want the CPU then the CUDA devices", infos)
	}
	d := newCUDA(t)
	info := d.Info()
	if info.Kind != "cuda" || info.Name == "" || info.ComputeCapability == "" ||
		info.TotalMemory <= 0 || info.FreeMemory <= 0 || info.FreeMemory > info.TotalMemory {
		t.Errorf("Info() = %+v", info)
	}
	for _, name := range []string{"cuda:x", "cuda:-1", "cuda:1000", "gpu"} {
		if d, err := device.Open(name); err == nil {
			d.Close()
			t.Errorf("Open(%q) did not fail", name)
		} else if d != nil {
			t.Errorf("Open(%q) failed but returned a device %v", name, d)
		}
	}
	if d, err := device.Open("cuda:0"); err != nil {
		t.Errorf("Open(cuda:0): %v", err)
	} else {
		d.Close()
	}
}

// TestCUDAOutOfMemory checks that an allocation larger than the GPU fails
// with the size asked and the memory free.
func TestCUDAOutOfMemory(t *testing.T) {
	d := newCUDA(t)
	n := int(d.Info().TotalMemory) // float32s: four times the memory
	_, err := d.Alloc(device.Float32, n)
	if err == nil {
		t.Fatalf("Alloc of %d float32 on a %d-byte GPU did not fail", n, n)
	}
	if msg := err.Error(); !strings.Contains(msg, "bytes asked") || !strings.Contains(msg, "free") {
		t.Errorf("out-of-memory error %q does not say what was asked and what is free", msg)
	}
	if err := d.Sync(); err != nil {
		t.Errorf("a failed Alloc broke the device: %v", err)
	}
}

// TestCUDAGemmEmptyK checks C = beta·C when k = 0, which bypasses cuBLAS.
func TestCUDAGemmEmptyK(t *testing.T) {
	for _, beta := range []float32{0, 1, 0.5} {
		d := newCUDA(t)
		empty, _ := d.Alloc(device.Float32, 0)
		c, _ := d.Alloc(device.Float32, 6)
		if err := device.Upload(d, c, []float32{1, 2, 3, 4, 5, 6}); err != nil {
			t.Fatal(err)
		}
		d.Gemm(false, false, 2, 3, 0, 1, empty, empty, beta, c)
		got := make([]float32, 6)
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := device.Download(d, got, c); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != beta*float32(i+1) {
				t.Fatalf("beta=%g: C = %v", beta, got)
			}
		}
	}
}

// TestCUDAClosed checks that a closed device refuses work instead of
// crashing, and that closing twice is harmless.
func TestCUDAClosed(t *testing.T) {
	d, err := device.Open("cuda")
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Alloc(device.Float32, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Alloc(device.Float32, 4); err == nil {
		t.Error("Alloc on a closed device did not fail")
	}
	if err := device.Upload(d, b, []float32{1}); err == nil {
		t.Error("CopyIn into a buffer of a closed device did not fail")
	}
	d.Zero(b)
	if err := d.Sync(); err == nil {
		t.Error("Sync on a closed device did not fail")
	}
}
