package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestGridCommand: a tiny grid end to end, its report, advise --grid on it
// and on a directory that is not a grid, and a bad flag, each error in one line.
func TestGridCommand(t *testing.T) {
	dir := t.TempDir()
	args := []string{"grid", "--device", "cpu", "--data", subset, "--train-samples", "1024", "--test-samples", "200", "--hidden", "16",
		"--batches", "16,64,256", "--lrs", "0.05,0.2", "--seeds", "1", "--targets", "1.5,0.8", "--max-epochs", "2", "--smooth-samples", "64",
		"--noise-batch", "16", "--noise-small", "16", "--noise-big", "128", "--noise-pairs", "1", "--noise-every", "8", "--out", dir}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"grid: sgd, [16] hidden", "target: smoothed training loss 1.5", "noise scale there: B_simple", "grid.json and CSV in " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("grid output lacks %q:\n%s", want, out)
		}
	}
	if again, err := run(t, "grid", "report", dir); err != nil || again != out {
		t.Errorf("grid report differs from the grid's own: %v\n%s", err, again)
	}
	out, err = run(t, "advise", "--grid", dir)
	if err == nil && !strings.Contains(out, "recommended: batch") || err != nil && (!strings.Contains(err.Error(), "no loss target") || strings.Contains(err.Error(), "\n")) {
		t.Errorf("advise --grid: %v\n%s", err, out)
	}
	if _, err := run(t, "advise", "--grid", t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a grid directory") {
		t.Errorf("advise --grid on an empty directory: %v", err)
	}
	if _, err := run(t, append(args[:len(args)-2], "--targets", "0", "--out", t.TempDir())...); err == nil || !strings.Contains(err.Error(), "loss targets must be positive") {
		t.Errorf("--targets 0: %v", err)
	}
}

// TestGridNoiseFlagDefaults: grid shares noise's --noise-big and
// --noise-pairs but keeps its own defaults (grid.go says why).
func TestGridNoiseFlagDefaults(t *testing.T) {
	for cmd, want := range map[string][2]string{"grid": {"2048", "2"}, "noise": {"1024", "10"}, "advise": {"1024", "10"}} {
		out, err := run(t, cmd, "--help")
		if err != nil {
			t.Fatal(err)
		}
		for i, flag := range []string{`--noise-big value\s+the big batch of the noise estimator`, `--noise-pairs value\s+pairs of gradients \(small and big batch\) averaged per noise estimate`} {
			if !regexp.MustCompile(flag + ` \(default: ` + want[i] + `\)`).MatchString(out) {
				t.Errorf("%s --help: no %s with default %s:\n%s", cmd, flag, want[i], out)
			}
		}
	}
}
