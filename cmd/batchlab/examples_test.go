package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestIndexedJobExample checks the Kubernetes example against what the
// study relies on: an Indexed Job (so each pod has JOB_COMPLETION_INDEX),
// --shards equal to completions, a per-index retry limit, a shared volume
// at --out. No cluster was at hand: this reads the manifest, no more.
func TestIndexedJobExample(t *testing.T) {
	b, err := os.ReadFile("examples/study-indexed-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		Kind string
		Spec struct {
			CompletionMode       string `yaml:"completionMode"`
			Completions          int
			Parallelism          int
			BackoffLimitPerIndex *int `yaml:"backoffLimitPerIndex"`
			Template             struct {
				Spec struct {
					RestartPolicy string `yaml:"restartPolicy"`
					Containers    []struct {
						Command      []string
						VolumeMounts []struct {
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &job); err != nil {
		t.Fatal(err)
	}
	s := job.Spec
	if job.Kind != "Job" || s.CompletionMode != "Indexed" || s.Completions < 2 || s.Parallelism < 1 ||
		s.BackoffLimitPerIndex == nil || s.Template.Spec.RestartPolicy != "Never" || len(s.Template.Spec.Containers) != 1 {
		t.Fatalf("not an Indexed Job with per-index retries: %+v", job)
	}
	c := s.Template.Spec.Containers[0]
	flag := func(name string) string {
		if i := slices.Index(c.Command, name); i >= 0 && i+1 < len(c.Command) {
			return c.Command[i+1]
		}
		return ""
	}
	if c.Command[1] != "study" || flag("--shards") != strconv.Itoa(s.Completions) {
		t.Errorf("the command %q does not pass --shards %d", c.Command, s.Completions)
	}
	if len(c.VolumeMounts) != 1 || !strings.HasPrefix(flag("--out"), c.VolumeMounts[0].MountPath+"/") {
		t.Errorf("--out %q is not on the shared volume %+v", flag("--out"), c.VolumeMounts)
	}
	// The command's flags are this build's: each index's pod would start.
	args := append(c.Command[1:], "--help")
	if out, err := process(args...).CombinedOutput(); err != nil {
		t.Errorf("%q: %v\n%s", args, err, out)
	}
	// And with JOB_COMPLETION_INDEX set, the shard it picks is that index.
	shard, from, err := studyShard("", s.Completions, func(k string) string {
		return map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(s.Completions - 1)}[k]
	})
	if err != nil || shard.Index != s.Completions-1 || shard.Count != s.Completions || !strings.Contains(from, "JOB_COMPLETION_INDEX") {
		t.Errorf("the last index: %v, %q, %v", shard, from, err)
	}
}

// TestSbatchExample runs the Slurm example script as Slurm would run its
// four array tasks, one after another, with the tiny preset: each takes its
// shard from the SLURM_ARRAY_* variables, and the last writes the report.
// (.ci/slurm-test.sh submits it to a real Slurm.)
func TestSbatchExample(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("no bash to run the example with")
	}
	dir := t.TempDir()
	for i := range 4 {
		cmd := process()
		cmd.Path, cmd.Args = bash, []string{bash, "examples/study-array.sbatch"}
		cmd.Env = append(cmd.Env, "BATCHLAB="+os.Args[0], "STUDY_OUT="+dir, "STUDY_ARGS=--preset tiny --data "+subset,
			"SLURM_ARRAY_TASK_ID="+strconv.Itoa(i), "SLURM_ARRAY_TASK_MIN=0", "SLURM_ARRAY_TASK_COUNT=4")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("task %d: %v\n%s", i, err, out)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		if !strings.Contains(first, "shard "+strconv.Itoa(i)+"/4 (from SLURM_ARRAY_TASK_ID=") {
			t.Errorf("task %d's first line: %q", i, first)
		}
		_, err = os.Stat(filepath.Join(dir, "report.html"))
		if done := err == nil; done != (i == 3) {
			t.Errorf("after task %d: report written %v", i, done)
		}
	}
}
