package runstore

import (
	"slices"
	"strings"
	"testing"
)

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

// TestPick: for every count, each run belongs to exactly one shard, the
// same one every time, and the shards' work differs by no more than the
// costliest run's. (bench/study checks the same on its plans.)
func TestPick(t *testing.T) {
	costs := []int{48, 1, 1, 5, 5, 5, 9, 9, 3, 3, 3, 3, 1}
	for n := 1; n <= 8; n++ {
		owners := make([]int, len(costs))
		load := make([]int, n)
		for k := range n {
			mine, again := (Shard{k, n}).Pick(costs), (Shard{k, n}).Pick(costs)
			if !slices.Equal(mine, again) {
				t.Fatalf("shard %d/%d picks differently twice", k, n)
			}
			for i, m := range mine {
				if m {
					owners[i]++
					load[k] += costs[i]
				}
			}
		}
		for i, o := range owners {
			if o != 1 {
				t.Fatalf("%d shards: run %d is in %d shards", n, i, o)
			}
		}
		if slices.Max(load)-slices.Min(load) > slices.Max(costs) {
			t.Errorf("%d shards: work per shard %v", n, load)
		}
	}
}
