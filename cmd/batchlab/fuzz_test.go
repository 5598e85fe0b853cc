package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/data"
)

// FuzzTrainFlags feeds arbitrary command lines to `batchlab train` on a
// small slice of the testdata subset, run in a temporary directory (for the
// files --trace, --cpuprofile and checkpoints write). Widths and batches are
// free: the memory plan, under the --memory budget appended last, is what
// keeps a run small, and --epochs 1 what keeps it short. Nothing may panic,
// and an error is one line.
func FuzzTrainFlags(f *testing.F) {
	for _, seed := range []string{
		"--batch 0", "--lr -1 --momentum 2", "--hidden 0,5", "--epochs 3 --seed 18446744073709551615",
		"--decay-epochs 1,2 --increase-batch --max-batch 1", "--lr-scale cubic", "--ghost-batch -3",
		"--transfer pinned-async,uint8", "--batch", "-b=12 extra", "--warmup NaN", "--lr Inf",
		"--hidden 4503599627370496", "--hidden 100000 --hidden 100000", "--eval-batch 100000000",
		"--hidden 9223372036854775807", "--hidden 64 --batch 10 --checkpoint-every 2", "--lr 1000 --batch 8",
		"--batch 100 --adapt-regime --base-batch 10 --ghost-batch 5", "--resume", "--checkpoint ''",
	} {
		f.Add(seed)
	}
	train, test, err := data.LoadMNIST(subset)
	if err != nil {
		f.Fatal(err)
	}
	tiny := filepath.Join(f.TempDir(), "mnist")
	if err := data.SaveMNIST(tiny, train.Subset(200), test.Subset(50)); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		t.Chdir(t.TempDir())
		args := append([]string{"batchlab", "train"}, strings.Fields(line)...)
		args = append(args, "--data", tiny, "--memory", "8MiB", "--epochs", "1")
		var out strings.Builder
		err := newApp(&out, io.Discard).RunContext(context.Background(), args)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("%q: error of several lines: %q", line, err)
		}
	})
}
