package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestMain lets the test binary stand in for batchlab: a subprocess started
// with BATCHLAB_AS_MAIN=1 runs main, so the signal test can kill a real
// process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("BATCHLAB_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestInterruptAndResume interrupts a training process with SIGINT in the
// middle of an epoch, checks that it saved a checkpoint and said how to
// resume, resumes it, and compares the result with an uninterrupted run:
// on the CPU they must be bit-identical.
func TestInterruptAndResume(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.ckpt")
	args := []string{"train", "--device", "cpu", "--data", subset, "--hidden", "256,256", "--batch", "10", "--epochs", "2",
		"--train-samples", "2000", "--seed", "5", "--json", "--no-progress"}

	whole, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], append(args, "--checkpoint", ckpt, "--checkpoint-every", "20")...)
	cmd.Env = append(os.Environ(), "BATCHLAB_AS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for { // the first periodic checkpoint: training is under way
		if _, err := os.Stat(ckpt); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no checkpoint after a minute; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	msg := stderr.String()
	if exitCode(err) != 130 {
		t.Fatalf("the interrupted process exited %d, want 130; stderr:\n%s", exitCode(err), msg)
	}
	m := regexp.MustCompile(`interrupted at epoch (\d+), step (\d+); checkpoint saved to .*; resume with:\n  .*--resume`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no resume instructions in stderr:\n%s", msg)
	}
	if step, _ := strconv.Atoi(m[2]); step == 0 || step == 200 {
		t.Logf("interrupted at an epoch boundary (epoch %s, step %s): resume still checked", m[1], m[2])
	}

	resumed, err := run(t, append(args, "--checkpoint", ckpt, "--resume")...)
	if err != nil {
		t.Fatal(err)
	}
	var a, b trainReport
	if err := json.Unmarshal([]byte(whole), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(resumed), &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Epochs) != 2 || len(b.Epochs) != 2 {
		t.Fatalf("%d and %d epochs", len(a.Epochs), len(b.Epochs))
	}
	for i := range a.Epochs {
		x, y := a.Epochs[i], b.Epochs[i]
		if !slices.Equal(x.StepLosses, y.StepLosses) || x.TestAccuracy != y.TestAccuracy || x.TrainLoss != y.TrainLoss || x.TotalUpdates != y.TotalUpdates {
			t.Errorf("epoch %d differs after the interrupted run was resumed (test accuracy %v vs %v)", i+1, x.TestAccuracy, y.TestAccuracy)
		}
	}
	if _, err := run(t, append(args, "--checkpoint", filepath.Join(dir, "none.ckpt"), "--resume")...); err == nil || !strings.Contains(err.Error(), "no checkpoint at") {
		t.Errorf("resuming from a missing checkpoint: %v", err)
	}
}

// TestInterruptOnTerminal runs train with stderr on a pseudo-terminal, as
// a user at a shell has it: the progress bar shows the running loss, and
// Ctrl-C's message and the final error each start a line of their own
// instead of running on from the bar's; the exit code is 130.
func TestInterruptOnTerminal(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	cmd := process("train", "--device", "cpu", "--data", subset, "--hidden", "256,256", "--batch", "10", "--epochs", "2",
		"--train-samples", "2000", "--checkpoint", filepath.Join(t.TempDir(), "run.ckpt"))
	cmd.Stderr = tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it
	var mu sync.Mutex
	var screen bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	shown := func() string {
		mu.Lock()
		defer mu.Unlock()
		return screen.String()
	}
	runningLoss := regexp.MustCompile(`epoch 1/2 loss \d+\.\d{4}`)
	for deadline := time.Now().Add(time.Minute); !runningLoss.MatchString(shown()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no running loss in the progress bar after a minute:\n%q", shown())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	time.Sleep(100 * time.Millisecond) // the last output through the pty
	out := shown()
	if exitCode(err) != 130 {
		t.Fatalf("exit code %d, want 130; the terminal showed:\n%q", exitCode(err), out)
	}
	// The bar's line is erased (carriage return, erase line) before the
	// message; the final error follows the cleared bar, at a line's start.
	if !strings.Contains(out, "\r\x1b[Kbatchlab: SIGINT: finishing the step and saving") {
		t.Errorf("the signal's message does not start its own line:\n%q", out)
	}
	i := strings.Index(out, "batchlab: interrupted at epoch")
	if i < 1 || !strings.ContainsAny(out[i-1:i], "\r\n") {
		t.Errorf("the final error does not start a line:\n%q", out)
	}
}
