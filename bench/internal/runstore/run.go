package runstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Job is one planned run as a store sees it.
type Job struct {
	ID string
	// Saved checks the run's saved result: nil when there is a valid one,
	// an error wrapping os.ErrNotExist when there is none, any other error
	// when the file is not a result of this run (it is run again).
	Saved func() error
	// Run runs the job and saves its result, atomically.
	Run func() error
}

// ResultPath is where the result of run id is saved in dir.
func ResultPath(dir, id string) string { return filepath.Join(dir, id+".json") }

// Jobs are the jobs of the planned runs that mine marks (Shard.Pick): run i
// is named ids[i] and keeps its result at ResultPath(dir, ids[i]); saved(i,
// path) checks that result (Job.Saved) and run(i, path) runs the run and
// saves it there (Job.Run).
func Jobs(dir string, ids []string, mine []bool, saved, run func(i int, path string) error) []Job {
	var jobs []Job
	for i, id := range ids {
		if !mine[i] {
			continue
		}
		path := ResultPath(dir, id)
		jobs = append(jobs, Job{
			ID:    id,
			Saved: func() error { return saved(i, path) },
			Run:   func() error { return run(i, path) },
		})
	}
	return jobs
}

// RunEach runs every job that has no valid result and that no live process
// holds, each under a claim it releases once the result is saved or the run
// failed: nothing half-done is saved, and no job runs twice at once. The
// first failure stops it.
func (c *Claimer) RunEach(jobs []Job, log io.Writer) error {
	for _, j := range jobs {
		if err := j.Saved(); err == nil {
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(log, "run %s: %v: running it again\n", j.ID, err)
		}
		cl, holder, err := c.Take(j.ID)
		if err != nil {
			return err
		}
		if cl == nil {
			fmt.Fprintf(log, "run %s: left to %s\n", j.ID, holder)
			continue
		}
		if j.Saved() == nil { // its holder finished it between our look and our claim
			cl.Release()
			continue
		}
		err = j.Run()
		cl.Release()
		if err != nil {
			return err
		}
	}
	return nil
}
