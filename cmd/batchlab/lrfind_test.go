package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/advise"
	"github.com/batchlab/batchlab/bench/lrfind"
)

// TestLRFind: lr-find on the MNIST subset prints JSON whose suggestion is
// in the range momentum SGD trains this MLP in, and --out saves the JSON
// and the plot.
func TestLRFind(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "lr-find", "--device", "cpu", "--data", subset, "--hidden", "32", "--json", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	var r lrfind.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.SuggestedLR < 0.003 || r.SuggestedLR > 1 || r.Batch != 128 || len(r.Points) < 20 || r.Stopped == "" {
		t.Errorf("suggested %g at batch %d, %d points, %s", r.SuggestedLR, r.Batch, len(r.Points), r.Stopped)
	}
	for _, f := range []string{"lr-find.json", "lr-find.svg", "lr-find.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 500 {
			t.Errorf("%s: %v", f, err)
		}
	}
	text, err := run(t, "lr-find", "--device", "cpu", "--data", subset, "--hidden", "16", "--steps", "80")
	if err != nil || !strings.Contains(text, "suggested LR") {
		t.Errorf("table: %v\n%s", err, text)
	}
}

// TestLRFindRefuses: settings that make no sweep, and the model flags
// lr-find cannot use, are one-line errors.
func TestLRFindRefuses(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--min-lr", "1", "--max-lr", "0.1"}, "need 0 < min LR < max LR"},
		{[]string{"--steps", "5"}, "at least 10 steps"},
		{[]string{"--steps", "40"}, "holds 3.2 steps"},
		{[]string{"--smoothing", "1"}, "smoothing factor"},
		{[]string{"--lr", "0.1"}, "flag provided but not defined: -lr"},
		{[]string{"--epochs", "2"}, "flag provided but not defined: -epochs"},
		{[]string{"--batch", "6000"}, "larger than the 5000 training samples"},
	} {
		_, err := run(t, append([]string{"lr-find", "--device", "cpu", "--data", subset}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("lr-find %v: %v, want one line with %q", c.args, err, c.want)
		}
	}
}

// TestAdviseLRFind: advise --lr-find recommends the range test's LR at
// the recommended batch, with the rule's beside it, and every throughput
// point carries its repeats; advise --epochs, which it used to show and
// ignore, is refused.
func TestAdviseLRFind(t *testing.T) {
	out, err := run(t, "advise", "--device", "cpu", "--data", subset, "--hidden", "32", "--batch-range", "16-64",
		"--noise-steps", "10", "--noise-big", "256", "--noise-pairs", "2", "--repeats", "2", "--lr-find", "--json", "--out", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var a advise.Advice
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if a.LRFind == nil || a.LR != a.LRFind.SuggestedLR || a.LRFind.Batch != a.Batch || !(a.RuleLR > 0) || len(a.KneeRuns) != 2 {
		t.Errorf("batch %d, LR %g, rule's %g, knees %v, range test %v", a.Batch, a.LR, a.RuleLR, a.KneeRuns, a.LRFind != nil)
	}
	for _, p := range a.Throughput {
		if len(p.Runs) != 2 {
			t.Errorf("B=%d: %d repeats", p.Batch, len(p.Runs))
		}
	}
	if _, err := run(t, "advise", "--device", "cpu", "--data", subset, "--epochs", "3"); err == nil || !strings.Contains(err.Error(), "flag provided but not defined: -epochs") {
		t.Errorf("advise --epochs: %v", err)
	}
}
