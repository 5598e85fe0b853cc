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
	"syscall"
	"testing"
	"time"
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
