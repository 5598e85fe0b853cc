package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/checkpoint"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func resumeConfig() engine.Config {
	cfg := smallConfig()
	cfg.Hidden, cfg.Batch, cfg.Epochs = []int{32}, 100, 3
	cfg.GhostBatch = 25 // batch-norm statistics must survive too
	return cfg
}

// learned is what a run learned, without its timings.
type learned struct {
	losses                         []float32
	trainLoss, trainAcc, testAcc   float64
	updates, totalUpdates, batches int
}

func outcome(stats []engine.EpochStats) []learned {
	var out []learned
	for _, s := range stats {
		out = append(out, learned{s.StepLosses, s.TrainLoss, s.TrainAccuracy, s.TestAccuracy, s.Updates, s.TotalUpdates, s.Batch})
	}
	return out
}

func equalOutcomes(a, b []learned) bool {
	return slices.EqualFunc(a, b, func(x, y learned) bool {
		return slices.Equal(x.losses, y.losses) && x.trainLoss == y.trainLoss && x.trainAcc == y.trainAcc &&
			x.testAcc == y.testAcc && x.updates == y.updates && x.totalUpdates == y.totalUpdates && x.batches == y.batches
	})
}

// TestExactResume: stopping after k steps, saving, loading into a fresh
// trainer and going on gives a run bit-identical to an uninterrupted one,
// for k at the start, in the middle and at the end of an epoch.
func TestExactResume(t *testing.T) { checkExactResume(t, resumeConfig()) }

func checkExactResume(t *testing.T, cfg engine.Config) {
	train, test := loadSubset(t)
	train, test = train.Subset(1000), test.Subset(200)
	newTrainer := func() *engine.Trainer {
		tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	whole, err := newTrainer().Run(context.Background(), engine.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	want := outcome(whole)
	for _, k := range []int{1, 7, 10, 13, 29} { // 10 steps per epoch
		ctx, cancel := context.WithCancel(context.Background())
		first := newTrainer()
		_, err := first.Run(ctx, engine.Hooks{Step: func(int, int, int) {
			if first.TotalUpdates() == k {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("k=%d: %v", k, err)
		}
		path := filepath.Join(t.TempDir(), "run.ckpt")
		c, err := first.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if err := checkpoint.Save(path, c); err != nil {
			t.Fatal(err)
		}
		loaded, err := checkpoint.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		second := newTrainer()
		if err := second.Restore(loaded); err != nil {
			t.Fatalf("k=%d: %v", k, err)
		}
		if e, s := second.Position(); (e-1)*10+s != k {
			t.Errorf("k=%d: restored at epoch %d step %d", k, e, s)
		}
		rest, err := second.Run(context.Background(), engine.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		if got := outcome(rest); !equalOutcomes(got, want) {
			t.Errorf("k=%d: the resumed run differs from the uninterrupted one", k)
		}
	}
}

func TestRestoreRefusesAnotherRun(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(500), test.Subset(100)
	cfg := resumeConfig()
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct {
		mod  func(*engine.Config)
		want string
	}{
		{func(c *engine.Config) { c.LR = 0.2 }, "lr was 0.05, now 0.2"},
		{func(c *engine.Config) { c.Hidden = []int{64} }, "hidden"},
		{func(c *engine.Config) { c.Hidden, c.Model = nil, "cnn:4" }, "model was unset, now cnn:4"},
	} {
		other := cfg
		c2.mod(&other)
		tr2, err := engine.NewTrainer(device.NewCPU(), other, train, test)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr2.Restore(c); err == nil || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("restoring into another run: %v, want %q", err, c2.want)
		}
	}
	// Other data: more samples (--train-samples), another set's files (--data).
	for _, other := range []struct {
		train *data.Dataset
		want  string
	}{
		{train.Subset(400), "the training set was mnist-train with 500 samples, now mnist-train with 400"},
		{withFiles(train, data.FileSum{Name: "train-images-idx3-ubyte.gz", Size: 1, SHA256: "00"}), "the training set's files differ"},
	} {
		tr2, err := engine.NewTrainer(device.NewCPU(), cfg, other.train, test)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr2.Restore(c); err == nil || !strings.Contains(err.Error(), other.want) {
			t.Errorf("restoring on other data: %v, want %q", err, other.want)
		}
	}
	more := cfg
	more.Epochs = 5 // more epochs is the same run, longer
	tr3, err := engine.NewTrainer(device.NewCPU(), more, train, test)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr3.Restore(c); err != nil {
		t.Errorf("more epochs refused: %v", err)
	}
}

// TestDivergenceStopsAndKeepsCheckpoint: a huge learning rate diverges; the
// error names the step and a layer, and no checkpoint of the broken state
// can be taken.
func TestDivergenceStopsAndKeepsCheckpoint(t *testing.T) {
	train, test := loadSubset(t)
	cfg := resumeConfig()
	cfg.GhostBatch, cfg.LR, cfg.Epochs = 0, 1e30, 1
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train.Subset(1000), test.Subset(100))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tr.Run(context.Background(), engine.Hooks{})
	if !errors.Is(err, engine.ErrDiverged) {
		t.Fatalf("lr 1e30: %v, want divergence", err)
	}
	// Step 1's loss is that of the initial weights; its update blows them
	// up, so step 2's loss is NaN. The run stops at the epoch's end, the
	// first read of the guard (10 steps), and the guard kept step 1's
	// weights, so the first non-finite tensor is a gradient.
	if msg := err.Error(); !strings.Contains(msg, "the loss of step 2 of epoch 1 is NaN, stopped after step 10;") || !strings.Contains(msg, "first non-finite tensor in forward order is fc1.weight's gradient (try") {
		t.Errorf("divergence error does not name the step and the first tensor: %s", msg)
	}
	if _, err := tr.Checkpoint(); !errors.Is(err, engine.ErrDiverged) {
		t.Errorf("a checkpoint of a diverged state: %v", err)
	}
}

// TestDivergenceStopsAtTheStep is issue 12's case 5: with a checkpoint
// after every step, a run at lr 1000 stops at the first NaN loss: the
// hook's checkpoint after it reads the guard, is refused for divergence
// (the only refusal) and stops the run, and the last checkpoint is of the
// last finite step.
func TestDivergenceStopsAtTheStep(t *testing.T) {
	train, test := loadSubset(t)
	cfg := resumeConfig()
	cfg.GhostBatch, cfg.LR, cfg.Epochs, cfg.Hidden, cfg.Batch = 0, 1000, 1, []int{512, 512}, 128
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test.Subset(100))
	if err != nil {
		t.Fatal(err)
	}
	var last *checkpoint.Checkpoint
	failed, refused := 0, 0
	_, err = tr.Run(context.Background(), engine.Hooks{Step: func(epoch, done, total int) {
		c, err := tr.Checkpoint()
		if errors.Is(err, engine.ErrDiverged) {
			refused++
			return
		}
		if err != nil {
			failed++
			return
		}
		last = c
	}})
	if !errors.Is(err, engine.ErrDiverged) {
		t.Fatalf("lr 1000: %v, want divergence", err)
	}
	var step int
	if _, scanErr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "stopped after step"):], "stopped after step %d", &step); scanErr != nil {
		t.Fatalf("%v: %v", err, scanErr)
	}
	if failed > 0 || refused != 1 || last == nil || tr.TotalUpdates() != step || step >= tr.StepsIn(1) {
		t.Fatalf("%d checkpoints failed, %d refused for divergence, stopped after %d of %d steps (%d updates): %v", failed, refused, step, tr.StepsIn(1), tr.TotalUpdates(), err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("the loss of step %d of epoch 1 is NaN, stopped after step %d;", step, step)) {
		t.Errorf("the run did not stop at the step whose loss is NaN: %v", err)
	}
	resumed, err := engine.NewTrainer(device.NewCPU(), cfg, train, test.Subset(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.Restore(last); err != nil {
		t.Fatal(err)
	}
	if _, done := resumed.Position(); done != step-1 {
		t.Errorf("the last checkpoint is at step %d, want %d (the last finite one)", done, step-1)
	}
}

func withFiles(ds *data.Dataset, files ...data.FileSum) *data.Dataset {
	c := *ds
	c.Files = files
	return &c
}
