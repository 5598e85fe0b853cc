package study

import "github.com/batchlab/batchlab/bench/internal/runstore"

// The study shares its shards and claims with the grid (bench/grid): they
// live in bench/internal/runstore; these names keep the study's API.
type Shard = runstore.Shard

var (
	ParseShard = runstore.ParseShard
	NewShard   = runstore.NewShard
)

// DefaultClaimTimeout is how long a run's claim may go untouched before
// another process takes it over.
const DefaultClaimTimeout = runstore.DefaultClaimTimeout

// pick says which of the planned runs are shard s's, dealt by the epochs
// they train (regime adaptation included): the 48-epoch regime-adapted run
// weighs what it costs.
func pick(s Shard, specs []runSpec) []bool {
	costs := make([]int, len(specs))
	for i, spec := range specs {
		costs[i] = spec.Config.Resolved().Epochs
	}
	return s.Pick(costs)
}
