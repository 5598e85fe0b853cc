package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
)

// FuzzTrainFlags feeds arbitrary command lines to `batchlab train`. The data
// directory is forced to one that does not exist, so no training starts: the
// fuzzer exercises flag parsing and the error paths, which must never panic
// and must give one line; only -h succeeds, with the help text.
func FuzzTrainFlags(f *testing.F) {
	for _, seed := range []string{
		"--batch 0", "--lr -1 --momentum 2", "--hidden 0,5", "--epochs 3 --seed 18446744073709551615",
		"--decay-epochs 1,2 --increase-batch --max-batch 1", "--lr-scale cubic", "--ghost-batch -3",
		"--transfer pinned-async,uint8", "--batch", "-b=12 extra", "--warmup NaN", "--lr Inf",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := append([]string{"batchlab", "train"}, strings.Fields(line)...)
		args = append(args, "--data", "/nonexistent/batchlab-fuzz")
		var out strings.Builder
		err := newApp(&out, io.Discard).RunContext(context.Background(), args)
		if err == nil {
			// Only a request for help succeeds without data.
			if !strings.Contains(out.String(), "USAGE:") {
				t.Fatalf("%q: no error without data, and no help printed", line)
			}
			return
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("%q: error of several lines: %q", line, err)
		}
	})
}

// FuzzConfigValidate: Validate accepts or refuses any numbers without
// panicking, and what it accepts the schedule functions handle.
func FuzzConfigValidate(f *testing.F) {
	f.Add(128, 0.1, 0.9, 0.0, 1, 0, 0.0, 0.1, false, 0, 1000)
	f.Add(0, -1.0, 1.0, -0.5, 0, -1, -2.0, 2.0, true, -1, 0)
	f.Fuzz(func(t *testing.T, batch int, lr, momentum, wd float64, epochs, baseBatch int, warmup, decay float64, increase bool, maxBatch, n int) {
		cfg := engine.Config{
			Hidden: []int{8}, Batch: batch, LR: lr, Momentum: momentum, WeightDecay: wd, Epochs: epochs % 1000,
			EvalBatch: 100, BaseBatch: baseBatch, WarmupEpochs: warmup, DecayEpochs: []int{1, 2}, DecayFactor: decay,
			IncreaseBatch: increase, MaxBatch: maxBatch,
		}
		if cfg.Validate(n) != nil {
			return
		}
		r := cfg.Resolved()
		for e := 1; e <= min(r.Epochs, 50); e++ {
			if b := r.BatchAt(e); b <= 0 || (increase && b > r.MaxBatch) {
				t.Fatalf("epoch %d: batch %d of a valid config %+v", e, b, cfg)
			}
			if lr := r.LRAt(e, 0, 10); !(lr > 0) {
				t.Fatalf("epoch %d: lr %g of a valid config %+v", e, lr, cfg)
			}
		}
	})
}
