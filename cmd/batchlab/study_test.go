package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/batchlab/batchlab/bench/study"
)

// TestStudyShardChoice: where the shard comes from, and each mistake as
// one line.
func TestStudyShardChoice(t *testing.T) {
	for _, tc := range []struct {
		flag   string
		shards int
		env    map[string]string
		want   study.Shard
		from   string // or the error
	}{
		{"", 0, nil, study.Shard{}, "no shard given"},
		{"1/4", 0, nil, study.Shard{Index: 1, Count: 4}, "from --shard"},
		{"", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, study.Shard{Index: 2, Count: 4}, "SLURM_ARRAY_TASK_ID=3"},
		{"", 4, map[string]string{"JOB_COMPLETION_INDEX": "3"}, study.Shard{Index: 3, Count: 4}, "JOB_COMPLETION_INDEX=3 and --shards 4"},
		{"", 0, map[string]string{"JOB_COMPLETION_INDEX": "3"}, study.Shard{}, "pass the Job's completions as --shards n"},
		{"", 4, map[string]string{"JOB_COMPLETION_INDEX": "4"}, study.Shard{}, "must be in 0..3"},
		{"", 4, nil, study.Shard{}, "needs JOB_COMPLETION_INDEX"},
		{"1/4", 4, nil, study.Shard{}, "give one"},
		{"", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}, study.Shard{}, "use a contiguous array"},
		{"", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, study.Shard{}, "needs SLURM_ARRAY_TASK_COUNT"},
		{"", 4, map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2"}, study.Shard{Index: 2, Count: 4}, "SLURM_ARRAY_TASK_ID=2 and --shards 4"},
		{"", 4, map[string]string{"SLURM_ARRAY_TASK_ID": "4"}, study.Shard{}, "must be in 0..3"},
	} {
		s, from, err := studyShard(tc.flag, tc.shards, func(k string) string { return tc.env[k] })
		if err != nil {
			from = err.Error()
		}
		if s != tc.want || !strings.Contains(from, tc.from) || strings.Contains(from, "\n") {
			t.Errorf("%q, %d, %v: %v, %q; want %v, %q", tc.flag, tc.shards, tc.env, s, from, tc.want, tc.from)
		}
	}
}

var started = regexp.MustCompile(`(?m)^\[\d+/\d+\] (\S+)$`)

// TestTwoStudiesOneDirectory starts two study processes on one directory
// at once: between them every run is run exactly once, and the report is
// written.
func TestTwoStudiesOneDirectory(t *testing.T) {
	dir := t.TempDir()
	var logs [2]syncBuffer
	var wg sync.WaitGroup
	for i := range logs {
		cmd := process("study", "--preset", "tiny", "--data", subset, "--out", dir)
		cmd.Stderr = &logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cmd.Wait(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, logs[i].String())
			}
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for i := range logs {
		ran := started.FindAllStringSubmatch(logs[i].String(), -1)
		t.Logf("process %d ran %d runs", i, len(ran))
		for _, m := range ran {
			count[m[1]]++
		}
	}
	results, _ := filepath.Glob(filepath.Join(dir, "runs", "*.json"))
	claims, _ := filepath.Glob(filepath.Join(dir, "runs", "*.claim.*"))
	if len(count) != len(results) || len(claims) != 0 {
		t.Errorf("%d runs started, %d results, claims left: %v", len(count), len(results), claims)
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("run %s was run %d times", id, n)
		}
	}
	res, err := study.ReadResults(dir)
	if err != nil || len(res.Missing) != 0 || len(res.Runs) != len(results) {
		t.Fatalf("the report: %v", err)
	}
}

// TestStudyShardKilled kills shard 0/2 with SIGKILL as it starts a run:
// the run leaves no result, only its claim; rerunning index 0 takes the
// claim over (its process is gone) and, with shard 1/2, gives the numbers
// of a single-process study.
func TestStudyShardKilled(t *testing.T) {
	dir, single := t.TempDir(), t.TempDir()
	args := []string{"study", "--preset", "tiny", "--data", subset}
	cmd := process(append(args, "--out", dir, "--shard", "0/2")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var killedRun string
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		if m := started.FindStringSubmatch(lines.Text()); m != nil && !strings.HasPrefix(m[0], "[1/") {
			killedRun = m[1]
			cmd.Process.Signal(syscall.SIGKILL) // as it starts its second run
			break
		}
	}
	cmd.Wait()
	if killedRun == "" {
		t.Fatal("shard 0/2 never started a second run")
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", killedRun+".json")); err == nil {
		t.Logf("run %s finished before the kill landed", killedRun)
	} else if claims, _ := filepath.Glob(filepath.Join(dir, "runs", killedRun+".claim.*")); len(claims) != 1 {
		t.Errorf("the killed run %s has neither a result nor its claim: %v", killedRun, claims)
	}
	for _, shard := range []string{"0/2", "1/2"} {
		if out, err := process(append(args, "--out", dir, "--shard", shard)...).CombinedOutput(); err != nil {
			t.Fatalf("shard %s: %v\n%s", shard, err, out)
		}
	}
	if out, err := process(append(args, "--out", single)...).CombinedOutput(); err != nil {
		t.Fatalf("single process: %v\n%s", err, out)
	}
	a, errA := study.ReadResults(single)
	b, errB := study.ReadResults(dir)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if d := study.SameNumbers(a, b); len(d) != 0 {
		t.Errorf("killed and rerun shards against one process:\n%s", strings.Join(d, "\n"))
	}
	if claims, _ := filepath.Glob(filepath.Join(dir, "runs", "*.claim.*")); len(claims) != 0 {
		t.Errorf("claims left: %v", claims)
	}
}

// TestStudyPlanChoice: --quick, --preset and --plan are one choice; two
// of them are an error (issue 16: --quick --preset full quietly ran quick).
func TestStudyPlanChoice(t *testing.T) {
	presets := study.Presets()
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte("name: mine\nseeds: [1]\nbatches: [16]\nexperiments: [fixed-lr]\nhidden: [8]\nepochs: 1\nbase_batch: 16\nbase_lr: 0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		quick        bool
		preset, plan string
		want         string // the plan's name, or the error
	}{
		{false, "", "", "full"},
		{true, "", "", "quick"},
		{false, "tiny", "", "tiny"},
		{false, "", planFile, "mine"},
		{true, "full", "", "--quick and --preset full: give one of --quick, --preset and --plan"},
		{false, "quick", planFile, "give one of"},
		{false, "huge", "", `unknown preset "huge"`},
	} {
		p, err := studyPlan(tc.quick, tc.preset, tc.plan, presets)
		got := p.Name
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v %q %q: %q, want %q", tc.quick, tc.preset, tc.plan, got, tc.want)
		}
	}
}

// TestStudyCustomPlan runs a study from a YAML plan (other batch sizes,
// seeds and experiments than any preset) on the MNIST subset: the runs are
// the plan's, the findings table says so, and its written preset.json is
// accepted back as a plan (the same directory, so nothing runs again).
func TestStudyCustomPlan(t *testing.T) {
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.yaml")
	plan := `name: mine
train_samples: 600
test_samples: 200
hidden: [8]
epochs: 1
seeds: [4, 5]
batches: [32, 128]
base_batch: 32
base_lr: 0.05
momentum: 0.9
experiments: [fixed-lr, cost]
cost: {rule: sqrt, target: 0.3, max_epochs: 2}
`
	if err := os.WriteFile(planFile, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "study")
	got, err := run(t, "study", "--plan", planFile, "--data", subset, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	runs, _ := filepath.Glob(filepath.Join(out, "runs", "*.json"))
	if len(runs) != 8 || !strings.Contains(got, "mine preset") || !strings.Contains(got, "B=128") {
		t.Errorf("%d runs, output:\n%s", len(runs), got)
	}
	for _, want := range []string{"fixed-lr_none_b128_s5.json", "cost_sqrt_b32_s4.json"} {
		if _, err := os.Stat(filepath.Join(out, "runs", want)); err != nil {
			t.Error(err)
		}
	}
	again, err := run(t, "study", "--plan", filepath.Join(out, "preset.json"), "--data", subset, "--out", out)
	if err != nil || !strings.Contains(again, "mine preset") {
		t.Errorf("the written plan read back: %v\n%s", err, again)
	}
}
