package study

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestShardsCoverThePlan: for every count, each planned run belongs to
// exactly one shard, the same one every time, and the shards' work (in
// epochs) differs by no more than the longest run's.
func TestShardsCoverThePlan(t *testing.T) {
	for _, name := range []string{"tiny", "quick", "full"} {
		specs := plan(Presets()[name])
		longest := 0
		for _, s := range specs {
			longest = max(longest, s.Config.Resolved().Epochs)
		}
		for n := 1; n <= 8; n++ {
			owners := make([]int, len(specs))
			load := make([]int, n)
			for k := range n {
				mine, again := pick(Shard{Index: k, Count: n}, specs), pick(Shard{Index: k, Count: n}, specs)
				for i := range specs {
					if mine[i] != again[i] {
						t.Fatalf("%s, shard %d/%d: run %d picked once and not again", name, k, n, i)
					}
					if mine[i] {
						owners[i]++
						load[k] += specs[i].Config.Resolved().Epochs
					}
				}
			}
			for i, o := range owners {
				if o != 1 {
					t.Fatalf("%s, %d shards: run %d is in %d shards", name, n, i, o)
				}
			}
			if slices.Max(load)-slices.Min(load) > longest {
				t.Errorf("%s, %d shards: epochs per shard %v", name, n, load)
			}
		}
	}
	if mine := pick(Shard{}, plan(tinyPreset())); slices.Contains(mine, false) {
		t.Error("the zero Shard does not pick every run")
	}
}

// TestShardedStudy runs the tiny study as two shards, one after the other:
// the first leaves the other's runs missing and writes no report, a report
// of the partial directory names them, the second writes the report, and
// its numbers equal a single-process study's.
func TestShardedStudy(t *testing.T) {
	p := tinyPreset()
	single := t.TempDir()
	want, err := Execute(context.Background(), p, Options{Dir: single, Device: "cpu", DataDir: subset})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Shard: Shard{Index: 0, Count: 2}})
	if err != nil {
		t.Fatal(err)
	}
	specs := plan(p)
	var missingStudy []string // the study's own runs; the grid's are named grid/<id>
	for _, id := range first.Missing {
		if !strings.HasPrefix(id, gridDir+"/") {
			missingStudy = append(missingStudy, id)
		}
	}
	if len(missingStudy) == 0 || len(missingStudy) == len(first.Missing) || len(first.Runs)+len(missingStudy) != len(specs) {
		t.Fatalf("after shard 0/2: %d runs, %d missing (%d of them the study's), of %d", len(first.Runs), len(first.Missing), len(missingStudy), len(specs))
	}
	if _, err := os.Stat(filepath.Join(dir, reportFile)); !os.IsNotExist(err) {
		t.Errorf("shard 0/2 wrote a report with runs missing: %v", err)
	}
	partial, err := Report(dir)
	if err != nil {
		t.Fatal(err)
	}
	undecided := 0 // the rules that read an experiment with a missing run
	for _, rl := range rules {
		if slices.ContainsFunc(specs, func(s runSpec) bool {
			return slices.Contains(rl.experiments, s.Experiment) && slices.Contains(first.Missing, s.ID)
		}) || slices.Contains(rl.experiments, Grid) && len(missingStudy) < len(first.Missing) {
			undecided++
		}
	}
	if len(partial.Missing) != len(first.Missing) || undecided == 0 || len(partial.Undecided) != undecided {
		t.Errorf("partial report: %d missing, %d undecided findings, want %d", len(partial.Missing), len(partial.Undecided), undecided)
	}
	page, _ := os.ReadFile(filepath.Join(dir, reportFile))
	if !strings.Contains(string(page), "A partial study") || !strings.Contains(string(page), first.Missing[0]) {
		t.Error("the partial report does not name the missing runs")
	}
	second, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Shard: Shard{Index: 1, Count: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Missing) != 0 || len(second.Undecided) != 0 {
		t.Fatalf("after both shards: missing %v", second.Missing)
	}
	got, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := SameNumbers(want, got); len(d) != 0 {
		t.Errorf("two shards against one process:\n%s", strings.Join(d, "\n"))
	}
	// SameNumbers can fail: a changed loss is found.
	got.Runs[3].Epochs[0].TestLoss += 1e-6
	if d := SameNumbers(want, got); len(d) != 1 || !strings.Contains(d[0], specs[3].ID) {
		t.Errorf("a changed test loss: %v", d)
	}
}
