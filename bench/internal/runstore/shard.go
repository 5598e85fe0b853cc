package runstore

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Shard is the i-th of n disjoint shares of a plan's runs, so a scheduler's
// job array (Slurm, a Kubernetes Indexed Job) can run a plan as n tasks
// into one directory. The zero value is the whole plan, "all runs".
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

// Pick says which of the planned runs, given the cost of each (epochs,
// samples: any measure of work), are this shard's. The runs are dealt
// costliest first, each to the shard with the least work so far, ties to
// the lower index: the choice follows from the plan alone, so a rerun of one
// index redoes only its runs, and the shards end at about the same time
// (dealing by position would give one shard of four every run at the
// largest batch).
func (s Shard) Pick(costs []int) []bool {
	mine := make([]bool, len(costs))
	if s.Count <= 1 {
		for i := range mine {
			mine[i] = true
		}
		return mine
	}
	order := make([]int, len(costs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return costs[order[a]] > costs[order[b]] })
	load := make([]int, s.Count)
	for _, i := range order {
		least := 0
		for k := range load {
			if load[k] < load[least] {
				least = k
			}
		}
		load[least] += costs[i]
		mine[i] = least == s.Index
	}
	return mine
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return "all runs"
	}
	return fmt.Sprintf("shard %d/%d", s.Index, s.Count)
}
