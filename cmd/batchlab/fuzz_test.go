package main

import (
	"context"
	"io"
	"strings"
	"testing"
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
