package study

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tinyPreset is the study shrunk to seconds: the MNIST subset, one seed.
func tinyPreset() Preset { return Presets()["tiny"] }

const subset = "../../testdata/mnist-subset"

// cancelAfter cancels a study when it announces run n+1, so n runs are saved.
type cancelAfter struct {
	n, seen int
	cancel  func()
	log     bytes.Buffer
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("[")) {
		c.seen++
		if c.seen > c.n {
			c.cancel()
		}
	}
	return c.log.Write(p)
}

// TestStudyResumesAndReports stops a study after three runs, continues it,
// and checks the report: every file is there and every finding says what
// was measured.
func TestStudyResumesAndReports(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset()
	ctx, cancel := context.WithCancel(context.Background())
	stop := &cancelAfter{n: 3, cancel: cancel}
	if _, err := Execute(ctx, p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: stop}); err == nil {
		t.Fatal("a cancelled study reported success")
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	if len(saved) != 3 {
		t.Fatalf("%d runs saved after cancelling at the fourth, want 3", len(saved))
	}

	var log bytes.Buffer
	res, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	planned := len(plan(p))
	if len(res.Runs) != planned {
		t.Errorf("%d runs in the results, %d planned", len(res.Runs), planned)
	}
	if !strings.HasPrefix(log.String(), "[4/") {
		t.Errorf("the continued study did not start at run 4:\n%s", log.String())
	}
	for _, name := range []string{"report.html", "results.json", "runs.csv", "findings.csv", "preset.json"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(res.Findings) != 7 {
		t.Fatalf("%d findings, want 7", len(res.Findings))
	}
	for _, f := range res.Findings {
		t.Logf("%-18s %s: %s", f.Verdict, f.Claim, f.Measured)
		if f.Measured == "" || !strings.ContainsAny(f.Measured, "0123456789") {
			t.Errorf("finding %q carries no measured numbers: %q", f.Claim, f.Measured)
		}
		if f.Verdict != Inconclusive && len(f.Numbers) == 0 {
			t.Errorf("finding %q has a verdict but no numbers", f.Claim)
		}
	}
	var back Results
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Runs) != planned {
		t.Errorf("results.json: %v, %d runs", err, len(back.Runs))
	}

	// Another preset in the same directory is refused, not mixed in.
	other := p
	other.Seeds = []uint64{1, 2}
	if _, err := Execute(context.Background(), other, Options{Dir: dir, Device: "cpu", DataDir: subset}); err == nil || !strings.Contains(err.Error(), "another --out") {
		t.Errorf("a different preset in the same directory: %v", err)
	}
}

// TestStudyRedoesInvalidRunFiles is issue 12's case 4: a run file that
// parses but is not this run's result (null, another run's file copied
// under its name) is run again, and the study says so.
func TestStudyRedoesInvalidRunFiles(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Execute(ctx, p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: &cancelAfter{n: 3, cancel: cancel}}); err == nil {
		t.Fatal("a cancelled study reported success")
	}
	specs := plan(p)
	runFile := func(i int) string { return filepath.Join(dir, "runs", specs[i].ID+".json") }
	if err := os.WriteFile(runFile(0), []byte("null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(runFile(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runFile(2), other, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	stop := &cancelAfter{n: 2, cancel: cancel} // the two redone, then stop
	Execute(ctx, p, Options{Dir: dir, Device: "cpu", DataDir: subset, Log: stop})
	log := stop.log.String()
	for _, want := range []string{
		"run " + specs[0].ID + fmt.Sprintf(": not a result of this run: schema 0, want %d: running it again\n[1/", runSchema),
		"run " + specs[2].ID + ": not a result of this run: its id is \"" + specs[1].ID + "\": running it again\n[3/",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	for _, i := range []int{0, 2} {
		b, err := os.ReadFile(runFile(i))
		if err != nil {
			t.Fatal(err)
		}
		var r Run
		if err := json.Unmarshal(b, &r); err != nil || r.isResultOf(specs[i]) != nil {
			t.Errorf("run %s after the redo: %v, %v", specs[i].ID, err, r.isResultOf(specs[i]))
		}
	}
}

// TestIsResultOf: each way a file can fail to be a run's result is named.
func TestIsResultOf(t *testing.T) {
	specs := plan(tinyPreset())
	spec := specs[0]
	good := Run{Schema: runSchema, ID: spec.ID, Experiment: spec.Experiment, Variant: spec.Variant, Batch: spec.Batch, Seed: spec.Seed,
		Config: spec.Config.Resolved(), Protocol: spec.Protocol, Error: "diverged"}
	if err := good.isResultOf(spec); err != nil {
		t.Fatalf("a valid failed run: %v", err)
	}
	for _, tc := range []struct {
		change func(*Run)
		want   string
	}{
		{func(r *Run) { r.Schema = 0 }, "schema 0"},
		{func(r *Run) { r.ID = "" }, `its id is ""`},
		{func(r *Run) { r.Seed = 9 }, "seed 9"},
		{func(r *Run) { r.Config.LR = 5 }, "not the planned"},
		{func(r *Run) { r.Error = "" }, "epochs, want"},
		{func(r *Run) { r.Protocol.Kind = TrainToTarget }, "its protocol is"},
	} {
		r := good
		tc.change(&r)
		if err := r.isResultOf(spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}

// TestReportNamesTheCommand: the command line that started a study is kept
// in its directory, so a report built later from the runs still names it.
func TestReportNamesTheCommand(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset()
	p.Experiments = []string{FixedLR}
	cmd := []string{"batchlab", "study", "--plan", "mine.yaml"}
	if _, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Command: cmd}); err != nil {
		t.Fatal(err)
	}
	// A second process with other flags (a shard, say) does not replace it.
	if _, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Command: []string{"other"}}); err != nil {
		t.Fatal(err)
	}
	res, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Command, " ") != strings.Join(cmd, " ") {
		t.Errorf("the report's command is %q, want %q", res.Command, cmd)
	}
}

// TestStudyTimesSurviveACopy: a study's start and end come from its runs,
// not from file times, which a copy or a clone resets.
func TestStudyTimesSurviveACopy(t *testing.T) {
	dir := t.TempDir()
	p := tinyPreset()
	p.Experiments = []string{FixedLR}
	before := time.Now()
	want, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if want.Started.Before(before) || !want.Started.Before(want.Finished) || want.Finished.After(after) {
		t.Fatalf("started %v, finished %v, want both within [%v, %v] in that order", want.Started, want.Finished, before, after)
	}
	later := after.Add(time.Hour)
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(path, later, later)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Started.Equal(want.Started) || !got.Finished.Equal(want.Finished) {
		t.Errorf("after the files' times moved an hour on: started %v, finished %v, want %v, %v", got.Started, got.Finished, want.Started, want.Finished)
	}
}
