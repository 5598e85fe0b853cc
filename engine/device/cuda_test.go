//go:build !cpu

// These tests run the CUDA device on a GPU, or on the fake driver of
// kernels/fakecuda, which CI builds and loads through LD_LIBRARY_PATH
// (make fake-gpu-test). With neither, gorgonia.org/cu exits while the test
// binary starts.

package device_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
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

// TestCUDAConformance runs the whole conformance suite on the GPU, on the
// suite's awkward sizes (1, 31, 1000, 4097 elements; rows of 1 to 1000):
// with the device's own grid cap, and with a cap of 3 blocks, so that every
// grid-stride loop goes round many times.
func TestCUDAConformance(t *testing.T) {
	t.Run("gridCap=device", func(t *testing.T) { devicetest.Run(t, newCUDA) })
	t.Run("gridCap=3", func(t *testing.T) {
		devicetest.Run(t, func(t *testing.T) device.Device {
			d := newCUDA(t)
			device.SetGridCap(d.(*device.CUDA), 3)
			return d
		})
	})
}

// TestCUDALarge compares the GPU with the CPU on inputs larger than one
// grid, so that every grid-stride loop goes round more than once (an H100
// holds 1056 blocks of 256 threads: 270336 elements per round).
func TestCUDALarge(t *testing.T) {
	const n, rows, cols = 5_000_003, 3001, 1000
	r := rand.New(rand.NewPCG(3, 4))
	x, g := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], g[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	idx := make([]int32, rows)
	for i := range idx {
		idx[i] = int32(r.IntN(n / cols))
	}
	results := map[string][][]float32{}
	for _, d := range []device.Device{device.NewCPU(), newCUDA(t)} {
		up := func(host []float32) device.Buffer { return uploaded(t, d, host) }
		xb, gb, vb, yb := up(x), up(g), up(make([]float32, n)), up(make([]float32, n))
		sums, gathered := up(make([]float32, cols)), up(make([]float32, rows*cols))
		ib, err := d.Alloc(device.Int32, rows)
		if err != nil {
			t.Fatal(err)
		}
		if err := device.Upload(d, ib, idx); err != nil {
			t.Fatal(err)
		}
		d.ReLU(yb, xb, n)
		d.MomentumSGD(xb, gb, vb, nil, n, 0.1, 0.9, 0.01)
		d.ColumnSum(sums, gb, rows, cols, 0)
		d.GatherRows(gathered, gb, ib, rows, cols)
		if err := d.Sync(); err != nil {
			t.Fatalf("%s: %v", d.Info().Kind, err)
		}
		for _, b := range []struct {
			name string
			buf  device.Buffer
		}{{"ReLU", yb}, {"MomentumSGD", xb}, {"ColumnSum", sums}, {"GatherRows", gathered}} {
			out := make([]float32, b.buf.Len())
			if err := device.Download(d, out, b.buf); err != nil {
				t.Fatal(err)
			}
			results[b.name] = append(results[b.name], out)
		}
	}
	for name, pair := range results {
		bad := 0
		for i := range pair[0] {
			if math.Abs(float64(pair[0][i]-pair[1][i])) > 1e-4*(1+math.Abs(float64(pair[0][i]))) {
				if bad < 3 {
					t.Errorf("%s[%d]: CPU %g, GPU %g", name, i, pair[0][i], pair[1][i])
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ", name, bad, len(pair[0]))
		}
	}
}

// TestCUDAKernelErrors checks that bad values found by kernels become the
// device's error at Sync, naming the primitive, the value and the row.
func TestCUDAKernelErrors(t *testing.T) {
	d := newCUDA(t)
	src, _ := d.Alloc(device.Float32, 12)
	dst, _ := d.Alloc(device.Float32, 8)
	idx, _ := d.Alloc(device.Int32, 2)
	if err := device.Upload(d, idx, []int32{0, 3}); err != nil {
		t.Fatal(err)
	}
	d.GatherRows(dst, src, idx, 2, 4) // src has rows 0 to 2
	err := d.Sync()
	if err == nil || !strings.Contains(err.Error(), "GatherRows: index 3 of row 1 outside [0,3)") {
		t.Errorf("out-of-range gather index gave %v", err)
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
	if !strings.Contains(info.Driver, "CUDA driver ") || !strings.Contains(info.Driver, "cuBLAS ") ||
		!strings.Contains(info.Driver, "libcublas.so") || !strings.Contains(info.String(), info.Driver) {
		t.Errorf("Info().Driver = %q does not name the driver and cuBLAS versions and library", info.Driver)
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
	if !errors.Is(err, device.ErrOutOfMemory) {
		t.Errorf("out-of-memory error %q does not wrap ErrOutOfMemory", err)
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

// TestCUDANoCublas checks that a machine without a usable cuBLAS gets a
// one-line error naming what was tried, not a crash. cuBLAS is loaded once
// per process, so the check runs in a child process of this test binary.
func TestCUDANoCublas(t *testing.T) {
	if os.Getenv("CUDADEV_CHILD") == "1" {
		_, err := device.Open("cuda")
		if err == nil {
			t.Fatal("Open(cuda) without cuBLAS did not fail")
		}
		os.Stdout.WriteString("OPEN: " + err.Error() + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCUDANoCublas$")
	cmd.Env = append(os.Environ(), "CUDADEV_CHILD=1", "BATCHLAB_CUBLAS=/nonexistent/libcublas.so.99")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := "OPEN: cuda: no usable cuBLAS (/nonexistent/libcublas.so.99: cannot open shared object file"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "BATCHLAB_CUBLAS") {
		t.Errorf("without cuBLAS, Open said\n%s\nwant a line starting %q that names BATCHLAB_CUBLAS", out, want)
	}
}

// TestCUDAAllocTooLarge checks that sizes whose bytes overflow are errors.
func TestCUDAAllocTooLarge(t *testing.T) {
	d := newCUDA(t)
	for _, n := range []int{1 << 52, math.MaxInt} {
		_, err := d.Alloc(device.Float32, n)
		if err == nil || !strings.Contains(err.Error(), "more bytes than") || !errors.Is(err, device.ErrOutOfMemory) {
			t.Errorf("Alloc(float32, %d) gave %v", n, err)
		}
	}
}

// TestCUDAConvSameBits checks that the convolution kernels give the CPU
// device's bits: the copies trivially, and Col2Im and MaxPoolBackward
// because both devices add from zero in the same order (conv.go), which
// is what makes a CNN's gradients match between them.
func TestCUDAConvSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		conv device.ConvShape
		pool device.PoolShape
	}{
		{device.ConvShape{N: 4, C: 6, H: 14, W: 14, KH: 5, KW: 5, Stride: 1, Pad: 2}, device.PoolShape{N: 4, C: 6, H: 14, W: 14, K: 3, Stride: 2, Pad: 1}},
		{device.ConvShape{N: 3, C: 2, H: 9, W: 11, KH: 3, KW: 3, Stride: 2, Pad: 1}, device.PoolShape{N: 3, C: 2, H: 9, W: 11, K: 2, Stride: 1, Pad: 0}},
	} {
		s, p := c.conv, c.pool
		nx, nc, ny := s.N*s.C*s.H*s.W, s.ColRows()*s.ColCols(), p.N*p.C*p.OutH()*p.OutW()
		x, col, dy := randFloats32(r, nx), randFloats32(r, nc), randFloats32(r, ny)
		for i := range x[:nx/2] {
			x[i] = float32(r.IntN(3)) // ties for the pooling
		}
		var results [2][][]byte
		for k, d := range []device.Device{device.NewCPU(), newCUDA(t)} {
			cv := d.(device.Convolver)
			up := func(host []float32) device.Buffer { return uploaded(t, d, host) }
			xb, colb, dyb := up(x), up(col), up(dy)
			im, dx, swapped, y, dxPool := up(make([]float32, nc)), up(make([]float32, nx)), up(make([]float32, nx)), up(make([]float32, ny)), up(make([]float32, nx))
			argmax, err := d.Alloc(device.Int32, ny)
			if err != nil {
				t.Fatal(err)
			}
			cv.Im2Col(im, xb, s)
			cv.Col2Im(dx, colb, s)
			cv.SwapAxes(swapped, xb, s.N, s.C, s.H*s.W, 1)
			cv.MaxPool(y, argmax, xb, p)
			cv.MaxPoolBackward(dxPool, dyb, argmax, p)
			if err := d.Sync(); err != nil {
				t.Fatalf("%s: %v", d.Info().Kind, err)
			}
			for _, b := range []device.Buffer{im, dx, swapped, y, argmax, dxPool} {
				out := make([]byte, b.Len()*b.DType().Size())
				if err := d.CopyOut(out, b); err != nil {
					t.Fatal(err)
				}
				results[k] = append(results[k], out)
			}
		}
		for i, name := range []string{"Im2Col", "Col2Im", "SwapAxes", "MaxPool y", "MaxPool argmax", "MaxPoolBackward"} {
			if !bytes.Equal(results[0][i], results[1][i]) {
				t.Errorf("%+v %+v: %s differs between the CPU and the GPU", s, p, name)
			}
		}
	}
}

func randFloats32(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// uploaded allocates a float32 buffer on d holding host.
func uploaded(t *testing.T, d device.Device, host []float32) device.Buffer {
	t.Helper()
	b, err := d.Alloc(device.Float32, len(host))
	if err != nil {
		t.Fatal(err)
	}
	upload(t, d, b, host)
	return b
}
