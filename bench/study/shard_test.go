package study

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
				mine, again := (Shard{k, n}).pick(specs), (Shard{k, n}).pick(specs)
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
	if mine := (Shard{}).pick(plan(tinyPreset())); slices.Contains(mine, false) {
		t.Error("the zero Shard does not pick every run")
	}
}

func TestParseShard(t *testing.T) {
	if s, err := ParseShard("2/4"); err != nil || s != (Shard{2, 4}) {
		t.Fatalf("2/4: %v, %v", s, err)
	}
	for in, want := range map[string]string{
		"2":    "want i/n",
		"a/4":  "whole numbers",
		"4/4":  "must be in 0..3",
		"-1/4": "must be in 0..3",
		"0/0":  "at least 1",
	} {
		if _, err := ParseShard(in); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// deadPID is the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeClaim(t *testing.T, path, body string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// TestClaims: a live claim is left alone, a stale one (a dead process on
// this host, or one untouched past the timeout on another) is taken over,
// and release removes both.
func TestClaims(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	me := &claimer{dir: dir, host: host, pid: os.Getpid(), timeout: time.Minute}
	claimPath := func(g string) string { return filepath.Join(dir, "r.claim."+g) }
	for _, tc := range []struct {
		name, body string
		age        time.Duration
		live       bool
	}{
		{"live process here", `{"host":"` + host + `","pid":` + strconv.Itoa(os.Getppid()) + `}`, 0, true},
		{"dead process here", `{"host":"` + host + `","pid":` + strconv.Itoa(deadPID(t)) + `}`, 0, false},
		{"fresh, another host", `{"host":"elsewhere","pid":1}`, 0, true},
		{"untouched, another host", `{"host":"elsewhere","pid":1}`, 2 * time.Minute, false},
		{"still being written", ``, 0, true},
	} {
		writeClaim(t, claimPath("1"), tc.body, tc.age)
		cl, holder, err := me.take("r")
		switch {
		case err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		case tc.live && cl != nil:
			t.Errorf("%s: taken over", tc.name)
		case tc.live && holder == "":
			t.Errorf("%s: left alone but no holder named", tc.name)
		case !tc.live && cl == nil:
			t.Errorf("%s: not taken over (held by %s)", tc.name, holder)
		case !tc.live:
			if cl.path != claimPath("2") {
				t.Errorf("%s: took over as %s", tc.name, cl.path)
			}
			cl.release()
			if left, _ := filepath.Glob(claimPath("*")); len(left) != 0 {
				t.Errorf("%s: release left %v", tc.name, left)
			}
		}
		os.Remove(claimPath("1"))
	}
}

// TestClaimRace: two processes that both found the same stale claim both
// try to take it over: exactly one wins; then many racing through take at
// once, only one holds the claim.
func TestClaimRace(t *testing.T) {
	dir := t.TempDir()
	writeClaim(t, filepath.Join(dir, "r.claim.1"), `{"host":"elsewhere","pid":1}`, time.Hour)
	a := &claimer{dir: dir, host: "a", pid: 1, timeout: time.Minute}
	b := &claimer{dir: dir, host: "b", pid: 2, timeout: time.Minute}
	nextA, holderA, errA := a.look("r")
	nextB, holderB, errB := b.look("r")
	if nextA != 2 || nextB != 2 || holderA != "" || holderB != "" || errA != nil || errB != nil {
		t.Fatalf("look: %d %q %v, %d %q %v", nextA, holderA, errA, nextB, holderB, errB)
	}
	clA, errA := a.create("r", nextA)
	clB, errB := b.create("r", nextB)
	if clA == nil || clB != nil || errA != nil || errB != nil {
		t.Fatalf("both took generation 2: %v %v, %v %v", clA, errA, clB, errB)
	}
	clA.release()

	writeClaim(t, filepath.Join(dir, "r.claim.1"), `{"host":"elsewhere","pid":1}`, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*claim
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &claimer{dir: dir, host: "racer" + strconv.Itoa(i), pid: 1000 + i, timeout: time.Minute}
			cl, _, err := c.take("r")
			if err != nil {
				t.Error(err)
			}
			if cl != nil {
				mu.Lock()
				won = append(won, cl)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d racers took the claim, want 1", len(won))
	}
	won[0].release()
}

// TestHeartbeat: a held claim stays fresh past the timeout.
func TestHeartbeat(t *testing.T) {
	dir := t.TempDir()
	c := &claimer{dir: dir, host: "a", pid: 1, timeout: 200 * time.Millisecond}
	cl, _, err := c.take("r")
	if err != nil || cl == nil {
		t.Fatal(err)
	}
	defer cl.release()
	time.Sleep(500 * time.Millisecond)
	other := &claimer{dir: dir, host: "b", pid: 2, timeout: 200 * time.Millisecond}
	if got, holder, _ := other.take("r"); got != nil || !strings.Contains(holder, "process 1 on a") {
		t.Fatalf("a claim with a heartbeat was taken over (holder %q)", holder)
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
	first, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Shard: Shard{0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	specs := plan(p)
	if len(first.Missing) == 0 || len(first.Runs) == 0 || len(first.Runs)+len(first.Missing) != len(specs) {
		t.Fatalf("after shard 0/2: %d runs, %d missing, of %d", len(first.Runs), len(first.Missing), len(specs))
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
		}) {
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
	second, err := Execute(context.Background(), p, Options{Dir: dir, Device: "cpu", DataDir: subset, Shard: Shard{1, 2}})
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
