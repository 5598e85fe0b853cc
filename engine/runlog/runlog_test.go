package runlog

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

func epochStats(epoch int, testLoss float64) engine.EpochStats {
	return engine.EpochStats{Epoch: epoch, Batch: 64, LR: 0.1, TrainLoss: 0.5, TestLoss: testLoss, TestAccuracy: 0.9,
		Updates: 2, TotalUpdates: 2 * epoch, StepLosses: engine.Losses{1.5, 0.25}}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestEpochsAppearAsTheyHappen: each epoch's line is in both files before
// the writer closes, with every key, and non-finite numbers as null.
func TestEpochsAppearAsTheyHappen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, NewManifest("train", "batchlab train --epochs 2", []string{"train", "--epochs", "2"}), Options{Steps: true})
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	b, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err := json.Unmarshal(b, &m); err != nil || m.Status != StatusRunning || m.Schema != Schema || m.SchemaVersion != Version || m.EndTime != nil {
		t.Fatalf("manifest before the first epoch: %+v, %v", m, err)
	}
	if err := w.Epoch(epochStats(1, 0.4)); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, filepath.Join(dir, EpochsJSONL)); len(got) != 1 || !strings.Contains(got[0], `"test_loss":0.4`) ||
		strings.Contains(got[0], "step_losses") || !strings.Contains(got[0], `"h2d_bytes":0`) {
		t.Fatalf("epochs.jsonl after one epoch: %q", got)
	}
	if err := w.Epoch(epochStats(2, math.Inf(1))); err != nil {
		t.Fatal(err)
	}
	got := lines(t, filepath.Join(dir, EpochsJSONL))
	if len(got) != 2 || !strings.Contains(got[1], `"test_loss":null`) {
		t.Fatalf("epochs.jsonl after two epochs: %q", got)
	}
	f, _ := os.Open(filepath.Join(dir, EpochsCSV))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 3 || rows[0][0] != "epoch" || rows[2][0] != "2" || len(rows[0]) != len(rows[1]) {
		t.Fatalf("epochs.csv: %q, %v", rows, err)
	}
	if steps := lines(t, filepath.Join(dir, StepsJSONL)); len(steps) != 4 ||
		steps[3] != `{"epoch":2,"step":2,"total_step":4,"loss":0.25}` {
		t.Fatalf("steps.jsonl: %q", steps)
	}
	if err := w.Manifest(func(m *Manifest) { m.Device = &device.Info{Kind: "cpu", TotalMemory: 1 << 30} }); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(StatusInterrupted, errors.New("SIGINT")); err != nil {
		t.Fatal(err)
	}
	r, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Manifest; m.Status != StatusInterrupted || m.Error != "SIGINT" || m.EndTime == nil || m.Device.TotalMemory != 1<<30 || m.Command != "train" {
		t.Fatalf("manifest read back: %+v", m)
	}
	if len(r.Epochs) != 2 || r.Epochs[0].TestLoss != 0.4 || !math.IsNaN(r.Epochs[1].TestLoss) {
		t.Fatalf("epochs read back: %+v", r.Epochs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ManifestFile)); !strings.Contains(string(b), `"total_memory": 1073741824`) {
		t.Fatalf("device info is not snake_case in the manifest:\n%s", b)
	}
}

// TestNoLogIsOverwritten: a directory that is not empty is refused; with
// Overwrite only one holding a run log, and only its files are replaced.
func TestNoLogIsOverwritten(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("mine"), 0o666)
	for _, overwrite := range []bool{false, true} {
		if _, err := Create(dir, NewManifest("train", "", nil), Options{Overwrite: overwrite}); err == nil {
			t.Fatalf("Overwrite %v: a directory holding notes.txt and no run log was accepted", overwrite)
		}
	}
	run := filepath.Join(dir, "run")
	w, err := Create(run, NewManifest("train", "", nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Epoch(epochStats(1, 0.4))
	w.Close(StatusDone, nil)
	os.WriteFile(filepath.Join(run, "notes.txt"), []byte("mine"), 0o666)
	if _, err := Create(run, NewManifest("train", "", nil), Options{}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("a run log was overwritten without Overwrite (err %v)", err)
	}
	if r, err := Read(run); err != nil || len(r.Epochs) != 1 {
		t.Fatalf("the refused Create changed the log: %v, %+v", err, r)
	}
	w, err = Create(run, NewManifest("train", "", nil), Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Close(StatusDone, nil)
	if r, err := Read(run); err != nil || len(r.Epochs) != 0 {
		t.Fatalf("after Overwrite: %v, %d epochs", err, len(r.Epochs))
	}
	if b, err := os.ReadFile(filepath.Join(run, "notes.txt")); err != nil || string(b) != "mine" {
		t.Fatalf("Overwrite touched a file that is not the log's: %q, %v", b, err)
	}
}

func TestReadRefusesWhatIsNoRunLog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o666) }
	for _, c := range []struct {
		setup func()
		path  string
		want  string
	}{
		{func() {}, filepath.Join(dir, "missing"), "no such directory"},
		{func() {}, dir, "not a run log"},
		{func() { write(ManifestFile, `{"schema":"other"}`) }, dir, "not a batchlab run manifest"},
		{func() { write(ManifestFile, `{"schema":"batchlab.run","schema_version":99}`) }, dir, "newer"},
		{func() {
			write(ManifestFile, `{"schema":"batchlab.run","schema_version":1}`)
			write(EpochsJSONL, "{\"epoch\":1}\nnot json\n")
		}, dir, EpochsJSONL + ":2"},
	} {
		c.setup()
		if _, err := Read(c.path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Read(%s): %v, want an error saying %q", c.path, err, c.want)
		}
	}
	// An epoch being written as it is read (no newline yet) is left out.
	write(EpochsJSONL, "{\"epoch\":1}\n{\"epo")
	if r, err := Read(dir); err != nil || len(r.Epochs) != 1 {
		t.Fatalf("a log with a line being written: %v", err)
	}
}

// TestFullHasEveryKey: the manifest's config names the settings that
// engine.Config's omitempty would leave out.
func TestFullHasEveryKey(t *testing.T) {
	b, err := Full(engine.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"lr_scale", "base_batch", "warmup_epochs", "graph", "batch_norm", "transfer", "batch"} {
		if _, ok := m[k]; !ok {
			t.Errorf("config %s has no key %q", b, k)
		}
	}
	if _, ok := m["memory"]; ok {
		t.Errorf("config %s has the json:\"-\" field", b)
	}
}

func TestNilWriterDoesNothing(t *testing.T) {
	var w *Writer
	if w.Epoch(epochStats(1, 0)) != nil || w.Step(Step{}) != nil || w.Result(1) != nil ||
		w.Manifest(func(*Manifest) {}) != nil || w.Close(StatusDone, nil) != nil || w.Dir() != "" {
		t.Fatal("a nil Writer did something")
	}
}

// TestFailedBeforeLoggingLeavesNoLog: a run that fails before its first
// epoch leaves no directory behind; one that fails later keeps its log.
func TestFailedBeforeLoggingLeavesNoLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	w, err := Create(dir, NewManifest("train", "", nil), Options{Steps: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(StatusFailed, errors.New("batch size must be positive")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a run that failed before logging left %s (%v)", dir, err)
	}
	w, err = Create(dir, NewManifest("train", "", nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Epoch(epochStats(1, 0.4))
	w.Close(StatusFailed, errors.New("diverged"))
	if r, err := Read(dir); err != nil || r.Manifest.Status != StatusFailed || r.Manifest.Error != "diverged" || len(r.Epochs) != 1 {
		t.Fatalf("a run that failed after an epoch: %v, %+v", err, r)
	}
}
