//go:build !cpu

// This test needs a CUDA driver: a GPU, or the fake driver of
// kernels/fakecuda (make fake-gpu-test). Without either, gorgonia.org/cu
// exits while the test binary starts.

package engine_test

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// gpuTrainSize is the size of TestGPUTrainMNIST's runs: by default the
// reference MLP for 200 steps of 64 digits, which a GPU does in about a
// second; the fake driver, which multiplies by a reference loop, is given
// less through the environment:
//
//	BATCHLAB_GPU_STEPS=30 BATCHLAB_GPU_BATCH=32 BATCHLAB_GPU_HIDDEN=64
func gpuTrainSize(t *testing.T) (steps, batch int, hidden []int) {
	t.Helper()
	positive := func(name, value string) int {
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive integer", name, value)
		}
		return n
	}
	steps, batch, hidden = 200, 64, []int{512, 512}
	if v, ok := os.LookupEnv("BATCHLAB_GPU_STEPS"); ok {
		steps = positive("BATCHLAB_GPU_STEPS", v)
	}
	if v, ok := os.LookupEnv("BATCHLAB_GPU_BATCH"); ok {
		batch = positive("BATCHLAB_GPU_BATCH", v)
	}
	if v, ok := os.LookupEnv("BATCHLAB_GPU_HIDDEN"); ok {
		hidden = nil
		for _, w := range strings.Split(v, ",") {
			hidden = append(hidden, positive("BATCHLAB_GPU_HIDDEN", w))
		}
	}
	return steps, batch, hidden
}

// TestGPUTrainMNIST trains the MLP (by default the reference 784-512-512-10,
// lr 0.1, momentum 0.9) for 200 steps of 64 full-MNIST digits from the same
// seed on the CPU, on the GPU, and on the GPU with CUDA graphs, and compares
// the per-step loss curves. Without the full MNIST it fails: a GPU run that
// skipped its one training check would look like a pass.
//
// Tolerance. Both devices compute in float32; they differ only in rounding:
// cuBLAS sums the 784- and 512-term dot products in another order than the
// CPU's SGEMM, and the kernels sum rows and columns in theirs. With the same
// GEMM, the emulated kernels stayed within 5e-7 of the CPU at every one of
// these 200 steps (measured on the host); cuBLAS's different order adds
// relative errors of about 1e-6 per product. The bound allows far more,
// 0.01 + 1% of the loss at every step and 0.005 on average over the last 50
// (or all, if fewer), and still fails on any real bug (a wrong kernel moves
// the loss by tenths within a few steps). With graphs the GPU runs the same
// kernels with the same arguments in the same order, and cuBLAS the same
// algorithm (TestCUDATraining says why): the curves must agree bit for bit.
func TestGPUTrainMNIST(t *testing.T) {
	dir := data.DefaultDir()
	train, test, err := data.LoadMNIST(dir)
	if err != nil {
		t.Fatalf("needs the full MNIST in %s (make data, or BATCHLAB_DATA=dir): %v", dir, err)
	}
	steps, batch, hidden := gpuTrainSize(t)
	if steps*batch > train.Len() {
		t.Fatalf("%d steps of %d samples need %d training samples; MNIST has %d", steps, batch, steps*batch, train.Len())
	}
	cfg := engine.DefaultConfig()
	cfg.Batch, cfg.Hidden = batch, hidden
	train, test = train.Subset(steps*cfg.Batch), test.Subset(2000)
	t.Logf("MLP 784-%v-10, %d steps of %d digits from %s", hidden, steps, batch, dir)
	curve := func(d device.Device, graph bool) []float32 {
		t.Helper()
		defer d.Close()
		c := cfg
		c.Graph = graph
		_, stats := trainAll(t, d, c, train, test)
		s := stats[0]
		t.Logf("%s graph=%v: %d steps, final loss %.4f, test accuracy %.4f, %.0f samples/s, fwd+bwd %.3fs update %.3fs",
			d.Info().Kind, graph, len(s.StepLosses), s.StepLosses[len(s.StepLosses)-1], s.TestAccuracy,
			s.SamplesPerSec, s.ComputeSeconds, s.UpdateSeconds)
		return s.StepLosses
	}
	cpu := curve(device.NewCPU(), false)
	gpu := curve(openCUDA(t), false)
	graph := curve(openCUDA(t), true)
	if len(cpu) != steps || len(gpu) != steps || len(graph) != steps {
		t.Fatalf("%d, %d and %d steps, want %d", len(cpu), len(gpu), len(graph), steps)
	}
	tail := min(50, steps)
	var worst, last, worstGraph float64
	for i := range cpu {
		d := math.Abs(float64(gpu[i] - cpu[i]))
		if d > 0.01+0.01*math.Abs(float64(cpu[i])) {
			t.Errorf("step %d: loss %g on the GPU, %g on the CPU", i, gpu[i], cpu[i])
		}
		worst = max(worst, d)
		if i >= steps-tail {
			last += d / float64(tail)
		}
		worstGraph = max(worstGraph, math.Abs(float64(graph[i]-gpu[i])))
	}
	// One line in a fixed form: the GPU kit reads these numbers from it.
	t.Logf("GPU vs CPU: largest difference %.3g, mean over the last %d steps %.3g; graphs vs none: %.3g", worst, tail, last, worstGraph)
	if last > 0.005 {
		t.Errorf("the last %d steps differ by %.3g on average, want ≤ 0.005", tail, last)
	}
	if worstGraph != 0 {
		t.Errorf("with graphs the loss curve moved by up to %.3g", worstGraph)
	}
}
