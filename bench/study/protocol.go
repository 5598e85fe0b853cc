package study

import (
	"context"
	"fmt"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
)

// Protocols: how long a run trains, chosen per experiment (Preset.protocol)
// and recorded in every run and in the results.
const (
	// EqualEpochs trains Epochs epochs at every batch size.
	EqualEpochs = "equal-epochs"
	// EqualUpdates trains as many updates as the base batch BaseBatch makes
	// in Epochs epochs: B/B₀ × the epochs, decay points stretched alike
	// (engine.Config.AdaptRegime), so whole epochs, rounded up.
	EqualUpdates = "equal-updates"
	// TrainToTarget stops at the end of the first epoch where the model,
	// evaluated on the whole training set, meets Target (Metric
	// TrainAccuracy or TrainLoss); after Epochs epochs it stops anyway,
	// and the run is "not converged".
	TrainToTarget = "train-to-target"
	// TimeToAccuracy stops at the end of the first epoch whose test
	// accuracy reaches Target, Epochs at most; the cost is the wall time of
	// the training passes until then.
	TimeToAccuracy = "time-to-accuracy"
)

// The metrics a target is set on.
const (
	TrainAccuracy = "train_accuracy"
	TrainLoss     = "train_loss"
	TestAccuracy  = "test_accuracy"
)

// Protocol is how long one run trains.
type Protocol struct {
	Kind      string  `json:"kind"`
	Epochs    int     `json:"epochs"`               // equal epochs: the epochs; with a target: the cap
	BaseBatch int     `json:"base_batch,omitempty"` // equal updates: the batch whose updates are matched
	Metric    string  `json:"metric,omitempty"`     // with a target
	Target    float64 `json:"target,omitempty"`
}

// HasTarget says whether the protocol stops at a target.
func (p Protocol) HasTarget() bool { return p.Kind == TrainToTarget || p.Kind == TimeToAccuracy }

// String says the protocol in words, for the report.
func (p Protocol) String() string {
	switch p.Kind {
	case EqualEpochs:
		return fmt.Sprintf("equal epochs (%d)", p.Epochs)
	case EqualUpdates:
		return fmt.Sprintf("equal updates (as many as batch %d in %d epochs)", p.BaseBatch, p.Epochs)
	case TrainToTarget, TimeToAccuracy:
		what := map[string]string{TrainAccuracy: "train accuracy ≥ ", TrainLoss: "train loss ≤ ", TestAccuracy: "test accuracy ≥ "}[p.Metric]
		if p.Metric == TrainLoss {
			what += lossQ.format(p.Target)
		} else {
			what += accuracy.with(p.Target)
		}
		return fmt.Sprintf("%s: until %s, checked at each epoch's end, at most %d epochs", p.Kind, what, p.Epochs)
	}
	return p.Kind
}

// Validate checks a protocol's settings.
func (p Protocol) Validate() error {
	if p.Epochs <= 0 {
		return fmt.Errorf("protocol %s: epochs must be positive, got %d", p.Kind, p.Epochs)
	}
	switch p.Kind {
	case EqualEpochs:
	case EqualUpdates:
		if p.BaseBatch <= 0 {
			return fmt.Errorf("protocol %s: base batch must be positive, got %d", p.Kind, p.BaseBatch)
		}
	case TrainToTarget:
		if p.Metric != TrainAccuracy && p.Metric != TrainLoss {
			return fmt.Errorf("protocol %s: metric %q, want %s or %s", p.Kind, p.Metric, TrainAccuracy, TrainLoss)
		}
	case TimeToAccuracy:
		if p.Metric != TestAccuracy {
			return fmt.Errorf("protocol %s: metric %q, want %s", p.Kind, p.Metric, TestAccuracy)
		}
	default:
		return fmt.Errorf("unknown protocol %q (want %s, %s, %s or %s)", p.Kind, EqualEpochs, EqualUpdates, TrainToTarget, TimeToAccuracy)
	}
	if p.HasTarget() && (!(p.Target > 0) || (p.Metric != TrainLoss && p.Target > 1)) {
		return fmt.Errorf("protocol %s: target %g of %s is out of range", p.Kind, p.Target, p.Metric)
	}
	return nil
}

// met says whether v, a value of the protocol's metric, meets its target.
func (p Protocol) met(v float64) bool {
	if p.Metric == TrainLoss {
		return v <= p.Target
	}
	return v >= p.Target
}

// Reached is where a run first met its protocol's target, and what it
// cost until then: the training passes' wall time and its split, the
// updates, the host→device copies and bytes.
type Reached struct {
	Epoch           int     `json:"epoch"`
	Value           float64 `json:"value"` // the metric's value there
	Updates         int     `json:"updates"`
	Seconds         float64 `json:"seconds"`
	TransferSeconds float64 `json:"transfer_seconds"`
	ComputeSeconds  float64 `json:"compute_seconds"`
	UpdateSeconds   float64 `json:"update_seconds"`
	H2DCopies       int64   `json:"h2d_copies"`
	H2DBytes        int64   `json:"h2d_bytes"`
}

// Converged says whether a run met its protocol's target; a protocol
// without one has nothing to miss.
func (r Run) Converged() bool { return !r.Protocol.HasTarget() || r.Reached != nil }

// trained is what trainUnder returns: the epochs, where the target was
// met, and the last evaluation on the training set (nil if none was made).
type trained struct {
	epochs              []engine.EpochStats
	reached             *Reached
	trainLoss, trainAcc *float64
}

// trainUnder trains tr epoch by epoch (tr's resolved Config says how many,
// the cap of a target protocol) and stops where protocol p says. The
// training-set evaluation a train-to-target check makes is kept, so the
// run need not make it again. On an error it returns the epochs done.
func trainUnder(ctx context.Context, tr *engine.Trainer, p Protocol, train *data.Dataset, hooks engine.Hooks) (trained, error) {
	var out trained
	var cost Reached
	for e := 1; e <= tr.Config().Epochs; e++ {
		var onStep func(done, total int)
		if hooks.Step != nil {
			onStep = func(done, total int) { hooks.Step(e, done, total) }
		}
		s, err := tr.Epoch(ctx, e, onStep)
		if err != nil {
			return out, err
		}
		out.epochs = append(out.epochs, s)
		if hooks.Epoch != nil {
			hooks.Epoch(s)
		}
		cost.Seconds += s.Seconds
		cost.TransferSeconds += s.TransferSeconds
		cost.ComputeSeconds += s.ComputeSeconds
		cost.UpdateSeconds += s.UpdateSeconds
		cost.H2DCopies += s.H2DCopies
		cost.H2DBytes += s.H2DBytes
		var v float64
		switch p.Kind {
		case TimeToAccuracy:
			v = s.TestAccuracy
		case TrainToTarget:
			loss, acc, err := tr.Evaluate(train)
			if err != nil {
				return out, err
			}
			out.trainLoss, out.trainAcc = &loss, &acc
			v = acc
			if p.Metric == TrainLoss {
				v = loss
			}
		default:
			continue
		}
		if p.met(v) {
			cost.Epoch, cost.Value, cost.Updates = e, v, s.TotalUpdates
			out.reached = &cost
			break
		}
	}
	return out, nil
}
