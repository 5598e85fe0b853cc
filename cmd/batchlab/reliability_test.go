package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The cases of issue 12 (a hostile test of the CLI), one test each.

// runCapturing runs the CLI in-process and returns stdout, stderr and the error.
func runCapturing(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := newApp(&stdout, &stderr).RunContext(context.Background(), append([]string{"batchlab"}, args...))
	return stdout.String(), stderr.String(), err
}

// process starts the test binary as batchlab (see TestMain).
func process(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BATCHLAB_AS_MAIN=1")
	return cmd
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// Case 1: widths and batches too big for memory are refused in one line,
// by every command that builds a model, before anything is allocated.
func TestHugeWidthsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"train", "--hidden", "4503599627370496", "--train-samples", "1000"},
		{"noise", "--hidden", "4503599627370496", "--train-samples", "1000"},
		{"advise", "--hidden", "4503599627370496", "--train-samples", "1000"},
		{"train", "--hidden", "2147483648"},
		{"train", "--hidden", "100000", "--hidden", "100000"},
		{"train", "--hidden", "50000", "--hidden", "50000"},
		{"train", "--hidden", "9223372036854775807"},
		{"train", "--eval-batch", "100000000"},
		{"train", "--hidden", "4096,4096", "--batch", "5000", "--memory", "300MiB"},
	} {
		_, _, err := runCapturing(t, append(args, "--data", subset)...)
		if err == nil || !strings.Contains(err.Error(), "needs ") || !strings.Contains(err.Error(), "more than the memory budget") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming the footprint and the budget", args, err)
		}
	}
	// As a process: one line on stderr, exit 1, at once.
	cmd := process("train", "--data", subset, "--hidden", "50000", "--hidden", "50000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if exitCode(err) != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "not even a batch of 1 fits") {
		t.Errorf("exit %d, stderr %q", exitCode(err), stderr.String())
	}
	// The plan needs only the files' headers: the data is never decoded.
	if took > time.Second {
		t.Errorf("refused after %v, want under a second", took)
	}
	t.Logf("refused in %v", took)
}

// Case 2: a second SIGINT ends a run in the middle of a long step at once,
// with the code of the first; SIGTERM alone exits 143 with the resume
// command on its own line.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model whose steps take seconds")
	}
	ckpt := filepath.Join(t.TempDir(), "run.ckpt")
	for _, tc := range []struct {
		signals []syscall.Signal
		args    []string
		code    int
		says    string
	}{
		{[]syscall.Signal{syscall.SIGINT, syscall.SIGINT}, []string{"--batch", "5000", "--hidden", "4096,4096"}, 130, "stopped at once by a second signal"},
		{[]syscall.Signal{syscall.SIGTERM}, []string{"--batch", "100", "--hidden", "256", "--epochs", "100"}, 143, "resume with:\n  batchlab train"},
	} {
		args := append([]string{"train", "--data", subset, "--checkpoint", ckpt, "--no-progress"}, tc.args...)
		cmd := process(args...)
		var stdout, stderr syncBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// The table's header is printed just before the first step.
		for deadline := time.Now().Add(time.Minute); !strings.Contains(stdout.String(), "test acc"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("training did not start; stderr:\n%s", stderr.String())
			}
		}
		time.Sleep(300 * time.Millisecond)
		var last time.Time
		for i, sig := range tc.signals {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			last = time.Now()
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("%v: still running two minutes later", tc.signals)
		}
		took := time.Since(last)
		if code := exitCode(err); code != tc.code || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("%v: exit %d (want %d), stderr:\n%s", tc.signals, code, tc.code, stderr.String())
		}
		t.Logf("%v: exit %d, %v after the last signal", tc.signals, exitCode(err), took)
		limit := time.Second
		if raceDetector {
			limit = 5 * time.Second
		}
		if len(tc.signals) == 2 && took > limit {
			t.Errorf("exited %v after the second signal, want within %v", took, limit)
		}
	}
}

// Case 3: a checkpoint resumes only the run it was taken of: the same
// number of samples, the same data files.
func TestResumeRefusesOtherData(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "run.ckpt")
	args := []string{"train", "--data", subset, "--hidden", "16", "--batch", "100", "--checkpoint", ckpt, "--no-progress"}
	if _, _, err := runCapturing(t, append(args, "--train-samples", "500")...); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCapturing(t, append(args, "--train-samples", "1000", "--epochs", "2", "--resume")...)
	if err == nil || !strings.Contains(err.Error(), "with 500 samples, now mnist-train with 1000") {
		t.Errorf("resumed with more samples: %v", err)
	}
	// The same set under another directory, one file changed.
	other := t.TempDir()
	for _, name := range []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		b, err := os.ReadFile(filepath.Join(subset, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "t10k-labels-idx1-ubyte.gz" {
			b = gzipped(t, []byte{0, 0, 8, 1, 0, 0, 3, 232}, 1000)
		}
		if err := os.WriteFile(filepath.Join(other, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = runCapturing(t, "train", "--data", other, "--hidden", "16", "--batch", "100", "--checkpoint", ckpt, "--no-progress", "--train-samples", "500", "--epochs", "2", "--resume")
	if err == nil || !strings.Contains(err.Error(), "the test set's files differ") {
		t.Errorf("resumed on other files: %v", err)
	}
}

// Case 5: a diverging run stops at the first NaN loss, with no failed
// checkpoint writes on the way, and the JSON keeps the partial epoch.
func TestDivergenceStopsAtTheStepCLI(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "run.ckpt")
	stdout, stderr, err := runCapturing(t, "train", "--data", subset, "--lr", "1000", "--checkpoint", ckpt, "--checkpoint-every", "1", "--json", "--no-progress")
	if err == nil || !strings.Contains(err.Error(), "training diverged: the loss of step ") || !strings.Contains(err.Error(), "first non-finite tensor in forward order is fc1.weight (try") {
		t.Fatalf("lr 1000: %v", err)
	}
	if strings.Contains(stderr, "checkpoint not written") {
		t.Errorf("checkpoints of the diverged state were attempted:\n%s", stderr)
	}
	var rep struct {
		Epochs  []json.RawMessage `json:"epochs"`
		Partial *struct {
			Updates    int        `json:"updates"`
			StepLosses []*float64 `json:"step_losses"`
		} `json:"partial"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if rep.Epochs == nil || rep.Partial == nil || rep.Partial.Updates == 0 || len(rep.Partial.StepLosses) != rep.Partial.Updates || rep.Partial.StepLosses[rep.Partial.Updates-1] != nil {
		t.Errorf("JSON of a diverged first epoch: epochs %v, partial %+v", rep.Epochs, rep.Partial)
	}
}

// Cases 6 to 8: stale temporary files go, unwritable paths are refused at
// the start, a run whose every write failed fails, and a second run on the
// same checkpoint is refused, naming the first.
func TestCheckpointHygiene(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")
	args := []string{"train", "--data", subset, "--hidden", "16", "--batch", "500", "--train-samples", "1000", "--no-progress"}
	stale := filepath.Join(dir, ".run.ckpt8674665223082153551")
	if err := os.WriteFile(stale, make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCapturing(t, append(args, "--checkpoint", ckpt)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) || !strings.Contains(stderr, "removed 1 temporary file(s)") {
		t.Errorf("the stale temporary file: %v; stderr %q", err, stderr)
	}
	if _, err := os.Stat(ckpt + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file outlived the run: %v", err)
	}
	for _, bad := range []struct{ path, want string }{
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "run.ckpt"), "cannot be written"},
		{"", "empty"},
	} {
		_, _, err := runCapturing(t, append(args, "--checkpoint", bad.path)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("--checkpoint %q: %v, want %q", bad.path, err, bad.want)
		}
	}

	// Every write fails: the path turns into a directory once the run has
	// checked it.
	failing := filepath.Join(t.TempDir(), "run.ckpt")
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := os.Stat(failing + ".lock"); err == nil {
				os.Mkdir(failing, 0o755)
				return
			}
		}
	}()
	_, stderr, err = runCapturing(t, append(args, "--checkpoint", failing, "--checkpoint-every", "1")...)
	if err == nil || !strings.Contains(err.Error(), "none of its 3 checkpoint writes") || strings.Contains(stderr, "the previous one is intact") {
		t.Errorf("every write failed: %v; stderr:\n%s", err, stderr)
	}

	// Two runs, one checkpoint.
	first := process("train", "--data", subset, "--batch", "5000", "--hidden", "2048,2048", "--epochs", "50", "--checkpoint", ckpt, "--no-progress")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { first.Process.Kill(); first.Wait() }()
	want := strconv.Itoa(first.Process.Pid)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(ckpt + ".lock"); strings.TrimSpace(string(b)) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run took no lock")
		}
	}
	_, _, err = runCapturing(t, append(args, "--checkpoint", ckpt)...)
	if err == nil || !strings.Contains(err.Error(), "in use by another run (process "+want) {
		t.Errorf("a second run on a checkpoint in use: %v", err)
	}
}

// Case 9: the resume command survives a shell.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"--checkpoint": "--checkpoint", "my run.ckpt": "'my run.ckpt'", "": "''", "it's": `'it'"'"'s'`, "a=b,c/d.e": "a=b,c/d.e", "$HOME": "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// Case 11: odd values are errors, not silent changes.
func TestOddValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--decay-factor", "0", "--decay-epochs", "1", "--epochs", "2"}, "--decay-factor must be in (0, 1), got 0"},
		{[]string{"--train-samples", "70000"}, "--train-samples 70000 is more than the 5000 training samples"},
		{[]string{"--decay-epochs", "5", "--epochs", "2"}, "decay epoch 5 is not before the last epoch 2"},
		{[]string{"--max-batch", "64"}, "caps only an increase-batch schedule"},
		{[]string{"--transfer", ""}, "--transfer is empty"},
		{[]string{"--device", ""}, "--device is empty"},
		{[]string{"--epochs", "1000000000"}, "epochs must be in 1 to 100000"},
	} {
		_, _, err := runCapturing(t, append([]string{"train", "--data", subset, "--hidden", "8", "--no-progress"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// gzipped is head followed by n zero bytes, gzipped.
func gzipped(t *testing.T, head []byte, n int) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(append(append([]byte(nil), head...), make([]byte, n)...)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// syncBuffer is a bytes.Buffer that a process's output can be written to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
