package study

import (
	"fmt"
	"strconv"
	"strings"
)

// Shard is the i-th of n disjoint shares of a study's runs, so a scheduler's
// job array (Slurm, a Kubernetes Indexed Job) can run a study as n tasks
// into one directory. The zero value is the whole study.
type Shard struct {
	Index, Count int
}

// ParseShard reads "i/n" with 0 ≤ i < n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want i/n, e.g. 0/4", s)
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: i and n must be whole numbers, as in 0/4", s)
	}
	sh, err := NewShard(i, n)
	if err != nil {
		return sh, fmt.Errorf("--shard %q: %v", s, err)
	}
	return sh, nil
}

// NewShard checks i and n.
func NewShard(i, n int) (Shard, error) {
	switch {
	case n < 1:
		return Shard{}, fmt.Errorf("shard count %d: must be at least 1", n)
	case i < 0 || i >= n:
		return Shard{}, fmt.Errorf("shard index %d: must be in 0..%d for %d shards", i, n-1, n)
	}
	return Shard{Index: i, Count: n}, nil
}

// owns says whether the run at position i of the plan is this shard's: the
// position modulo n, so the assignment follows from the plan alone and a
// rerun of one index redoes only its runs. Consecutive runs of the plan
// differ in batch size, so every shard gets a mix of cheap and dear runs.
func (s Shard) owns(i int) bool {
	return s.Count <= 1 || i%s.Count == s.Index
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return "the whole study"
	}
	return fmt.Sprintf("shard %d/%d", s.Index, s.Count)
}
