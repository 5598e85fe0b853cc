package study

import (
	"context"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func subsetData(t *testing.T, n int) (train, test *data.Dataset) {
	t.Helper()
	train, test, err := data.LoadMNIST(subset)
	if err != nil {
		t.Fatal(err)
	}
	return train.Subset(n), test.Subset(200)
}

// tinyAdam is a small model that learns the subset within a few epochs.
func tinyAdam(epochs int) engine.Config {
	return engine.Config{Hidden: []int{32}, Batch: 50, LR: 3e-3, Optimizer: engine.Adam, Beta1: engine.DefaultBeta1,
		Beta2: engine.DefaultBeta2, Eps: engine.DefaultEps, Epochs: epochs, Seed: 1, EvalBatch: 500}
}

func trainFor(t *testing.T, cfg engine.Config, p Protocol, train, test *data.Dataset) trained {
	t.Helper()
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	got, err := trainUnder(context.Background(), tr, p, train, engine.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTrainToTargetStopsAtTheTarget: the run stops at the first epoch
// whose model meets the target on the whole training set; the same run
// one epoch shorter (CPU training is deterministic) does not meet it.
func TestTrainToTargetStopsAtTheTarget(t *testing.T) {
	train, test := subsetData(t, 1000)
	p := Protocol{Kind: TrainToTarget, Epochs: 30, Metric: TrainAccuracy, Target: 0.95}
	got := trainFor(t, tinyAdam(p.Epochs), p, train, test)
	if got.reached == nil {
		t.Fatalf("did not reach %g train accuracy in %d epochs", p.Target, p.Epochs)
	}
	r := got.reached
	t.Logf("reached %.4f train accuracy at epoch %d", r.Value, r.Epoch)
	if len(got.epochs) != r.Epoch || r.Epoch < 2 || r.Epoch >= p.Epochs || r.Value < p.Target || *got.trainAcc != r.Value {
		t.Fatalf("stopped after %d epochs, reached at %d with %g (train accuracy %g)", len(got.epochs), r.Epoch, r.Value, *got.trainAcc)
	}
	var seconds float64
	for _, e := range got.epochs {
		seconds += e.Seconds
	}
	if r.Seconds != seconds || r.Updates != got.epochs[len(got.epochs)-1].TotalUpdates {
		t.Errorf("cost to the target: %g s and %d updates, the epochs say %g s and %d", r.Seconds, r.Updates, seconds, got.epochs[len(got.epochs)-1].TotalUpdates)
	}
	tr, err := engine.NewTrainer(device.NewCPU(), tinyAdam(r.Epoch-1), train, test)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background(), engine.Hooks{}); err != nil {
		t.Fatal(err)
	}
	if _, acc, err := tr.Evaluate(train); err != nil || acc >= p.Target {
		t.Errorf("one epoch earlier the train accuracy was %g (%v), at or above the target %g: it should have stopped there", acc, err, p.Target)
	}
}

// TestTrainToTargetCap: a target out of reach stops at the cap, and the
// run is not converged (a result, not a failure).
func TestTrainToTargetCap(t *testing.T) {
	train, test := subsetData(t, 1000)
	p := Protocol{Kind: TrainToTarget, Epochs: 2, Metric: TrainLoss, Target: 1e-6}
	got := trainFor(t, tinyAdam(p.Epochs), p, train, test)
	r := Run{Protocol: p, Epochs: got.epochs, Reached: got.reached, FinalTrainLoss: got.trainLoss}
	if len(got.epochs) != 2 || got.reached != nil || r.Converged() || r.failure() != "" {
		t.Errorf("%d epochs, reached %v, converged %v, failure %q: want 2, nil, false, none", len(got.epochs), got.reached, r.Converged(), r.failure())
	}
}

// TestTimeToAccuracy stops at the first epoch whose test accuracy reaches
// the target.
func TestTimeToAccuracy(t *testing.T) {
	train, test := subsetData(t, 1000)
	p := Protocol{Kind: TimeToAccuracy, Epochs: 20, Metric: TestAccuracy, Target: 0.8}
	got := trainFor(t, tinyAdam(p.Epochs), p, train, test)
	if got.reached == nil {
		t.Fatalf("did not reach %g test accuracy in %d epochs", p.Target, p.Epochs)
	}
	for i, e := range got.epochs {
		if last := i == len(got.epochs)-1; (e.TestAccuracy >= p.Target) != last {
			t.Errorf("epoch %d: test accuracy %g, the last epoch is %d", e.Epoch, e.TestAccuracy, len(got.epochs))
		}
	}
}

// TestProtocolValidate: each mistake is named.
func TestProtocolValidate(t *testing.T) {
	for _, p := range []Protocol{
		{Kind: "until-bored", Epochs: 1},
		{Kind: EqualEpochs},
		{Kind: EqualUpdates, Epochs: 3},
		{Kind: TrainToTarget, Epochs: 3, Metric: TestAccuracy, Target: 0.9},
		{Kind: TimeToAccuracy, Epochs: 3, Metric: TestAccuracy, Target: 1.5},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
