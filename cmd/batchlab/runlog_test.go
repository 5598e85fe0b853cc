package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batchlab/batchlab/engine/runlog"
)

// readManifest reads dir's manifest.json as written, without runlog.Read's
// checks, so that a test sees what a reader of the file would.
func readManifest(t *testing.T, dir string) runlog.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, runlog.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m runlog.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, b)
	}
	return m
}

// completeLines are the lines of path that end in a newline.
func completeLines(path string) []string {
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(b), "\n")
	return lines[:len(lines)-1]
}

// TestRunDirWhileRunning: a training process logs its manifest and each
// epoch's line as it goes. The test reads epochs.jsonl while the process
// is still training (a run far longer than the test waits), then stops it
// with SIGINT and finds every finished epoch logged and the manifest
// saying how the run ended.
func TestRunDirWhileRunning(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "run")
	cmd := process("train", "--device", "cpu", "--data", subset, "--hidden", "16", "--batch", "250", "--train-samples", "500",
		"--epochs", "100000", "--run-dir", dir, "--checkpoint", filepath.Join(tmp, "ckpt"), "--no-progress")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	epochs := filepath.Join(dir, runlog.EpochsJSONL)
	for deadline := time.Now().Add(time.Minute); len(completeLines(epochs)) < 2; time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before its log was read; stderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no epoch logged after a minute; stderr:\n%s", stderr.String())
		}
	}
	// Still training: the lines were written as the epochs ended.
	select {
	case err := <-exited:
		t.Fatalf("the run ended (%v) before its log was read", err)
	default:
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(completeLines(epochs)[0]), &first); err != nil || first["epoch"] != 1.0 || first["test_accuracy"] == nil {
		t.Fatalf("first line of epochs.jsonl: %v, %v", first, err)
	}
	m := readManifest(t, dir)
	if m.Status != runlog.StatusRunning || m.EndTime != nil || m.Command != "train" || m.Device == nil || m.Device.Kind != "cpu" ||
		m.Flags["batch"] != 250.0 || m.Flags["epochs"] != 100000.0 || !strings.Contains(m.CommandLine, "--run-dir") || len(m.Config) == 0 {
		t.Fatalf("manifest while running: %+v", m)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; exitCode(err) != 130 {
		t.Fatalf("exit %d after SIGINT, want 130; stderr:\n%s", exitCode(err), stderr.String())
	}
	r, err := runlog.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Manifest.Status != runlog.StatusInterrupted || r.Manifest.EndTime == nil || !strings.Contains(r.Manifest.Error, "interrupted") {
		t.Fatalf("manifest after SIGINT: status %q, error %q", r.Manifest.Status, r.Manifest.Error)
	}
	for i, e := range r.Epochs {
		if e.Epoch != i+1 || e.Updates != 2 {
			t.Fatalf("line %d of epochs.jsonl is epoch %d with %d updates", i+1, e.Epoch, e.Updates)
		}
	}
	f, err := os.Open(filepath.Join(dir, runlog.EpochsCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rows, err := csv.NewReader(f).ReadAll(); err != nil || len(rows) != len(r.Epochs)+1 {
		t.Fatalf("epochs.csv has %d rows for %d epochs (%v)", len(rows), len(r.Epochs), err)
	}
}

// TestRunDirIsNotOverwritten: a second run into the same directory is
// refused before it trains, and --overwrite replaces the log; a run refused
// for a bad setting leaves no directory in the way of the corrected one.
func TestRunDirIsNotOverwritten(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--device", "cpu", "--data", subset, "--hidden", "8", "--batch", "250", "--train-samples", "500", "--epochs", "2", "--run-dir", dir}
	if _, err := run(t, append(args, "--batch", "0")...); err == nil {
		t.Fatal("--batch 0 trained")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("a run refused before training left %s behind, in the way of the corrected command", dir)
	}
	if _, err := run(t, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("a second run into %s: %v, want a refusal naming --overwrite", dir, err)
	}
	if r, err := runlog.Read(dir); err != nil || len(r.Epochs) != 2 || r.Manifest.Status != runlog.StatusDone {
		t.Fatalf("the refused run changed the log: %v", err)
	}
	if _, err := run(t, append(args, "--overwrite", "--epochs", "1")...); err != nil {
		t.Fatal(err)
	}
	if r, err := runlog.Read(dir); err != nil || len(r.Epochs) != 1 {
		t.Fatalf("after --overwrite: %v", err)
	}
	if _, err := run(t, "train", "--device", "cpu", "--data", subset, "--log-steps"); err == nil || !strings.Contains(err.Error(), "--run-dir") {
		t.Fatalf("--log-steps without --run-dir: %v", err)
	}
}

// TestTrainJSONHasTheManifest: --json prints the manifest the run log
// holds, with the same keys, and the device in snake_case.
func TestTrainJSONHasTheManifest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	out, err := run(t, "train", "--device", "cpu", "--data", subset, "--hidden", "8", "--batch", "250", "--train-samples", "500",
		"--epochs", "1", "--json", "--run-dir", dir, "--log-steps")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var printed, logged map[string]any
	json.Unmarshal(rep["manifest"], &printed)
	b, _ := os.ReadFile(filepath.Join(dir, runlog.ManifestFile))
	json.Unmarshal(b, &logged)
	for k := range logged {
		if _, ok := printed[k]; !ok {
			t.Errorf("--json's manifest has no %q", k)
		}
	}
	if printed["status"] != "done" || logged["status"] != "done" {
		t.Errorf("status printed %v, logged %v", printed["status"], logged["status"])
	}
	if !strings.Contains(string(rep["device"]), `"total_memory"`) {
		t.Errorf("device is not snake_case: %s", rep["device"])
	}
	if n := len(completeLines(filepath.Join(dir, runlog.StepsJSONL))); n != 2 {
		t.Errorf("steps.jsonl has %d lines for 2 steps", n)
	}
}
