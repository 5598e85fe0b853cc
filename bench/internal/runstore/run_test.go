package runstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// TestJobs: only the runs the shard picked become jobs, each under its own
// name, and its checks and run get its index and result path.
func TestJobs(t *testing.T) {
	dir := t.TempDir()
	var calls []string
	note := func(what string) func(i int, path string) error {
		return func(i int, path string) error {
			calls = append(calls, fmt.Sprintf("%s %d %s", what, i, filepath.Base(path)))
			return errors.New(what)
		}
	}
	jobs := Jobs(dir, []string{"a", "b", "c"}, []bool{true, false, true}, note("saved"), note("run"))
	var names []string
	for _, j := range jobs {
		names = append(names, j.ID)
		if err := j.Saved(); err == nil || err.Error() != "saved" {
			t.Errorf("%s: Saved gave %v", j.ID, err)
		}
		if err := j.Run(); err == nil || err.Error() != "run" {
			t.Errorf("%s: Run gave %v", j.ID, err)
		}
	}
	if !slices.Equal(names, []string{"a", "c"}) {
		t.Errorf("jobs %v, want a and c", names)
	}
	if want := []string{"saved 0 a.json", "run 0 a.json", "saved 2 c.json", "run 2 c.json"}; !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
	if got := ResultPath(dir, "c"); got != filepath.Join(dir, "c.json") {
		t.Errorf("ResultPath: %s", got)
	}
}
