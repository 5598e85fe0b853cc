package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/epoch"
	"github.com/batchlab/batchlab/bench/transfer"
)

func TestBenchTransfer(t *testing.T) {
	dir := t.TempDir()
	tracePath, profPath := filepath.Join(dir, "trace.json"), filepath.Join(dir, "cpu.prof")
	args := []string{"bench", "transfer", "--device", "cpu", "--batches", "1,64,512", "--samples", "1024",
		"--repeats", "2", "--min-time", "1ms", "--out", dir, "--trace", tracePath, "--cpuprofile", profPath}
	out, err := run(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CPU device", "fit t(B) = α + bytes(B)/β", "resident", "N = 1024"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"transfer.json", "transfer.csv", "transfer-batch-time.png", "transfer-per-sample.svg", "transfer-gbps.png", "transfer-epoch.svg", "cpu.prof"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	checkTrace(t, tracePath, "load pinned-async,uint8 batch=512", "copy indices", "gather")

	out, err = run(t, "bench", "transfer", "--batches", "2,8", "--samples", "100", "--repeats", "1", "--min-time", "1ms",
		"--transfer", "pinned,uint8", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r transfer.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(r.Points) != 2 || r.Points[0].Strategy != "pinned,uint8" || r.Samples != 100 {
		t.Errorf("--json report: %+v", r)
	}
}

func TestBenchEpoch(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, "bench", "epoch", "--data", subset, "--train-samples", "500", "--batches", "50,250",
		"--hidden", "16", "--transfer", "resident", "--out", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r epoch.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(r.Points) != 2 || r.Points[0].Updates != 10 || r.Points[1].Updates != 2 || r.Transfer != "resident" {
		t.Errorf("report: %+v", r)
	}
	for _, name := range []string{"epoch.json", "epoch.csv", "epoch-split.svg", "epoch-split.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	out, err = run(t, "bench", "epoch", "--data", subset, "--train-samples", "200", "--batches", "100", "--hidden", "8", "--csv")
	if err != nil || !strings.HasPrefix(out, "device,transfer,samples,batch,lr") {
		t.Errorf("--csv: %v\n%s", err, out)
	}
}

func TestTrainTransferTrace(t *testing.T) {
	dir := t.TempDir()
	tracePath, profPath := filepath.Join(dir, "trace.json"), filepath.Join(dir, "cpu.prof")
	_, err := run(t, "train", "--data", subset, "--hidden", "16", "--train-samples", "300", "--batch", "100",
		"--transfer", "pinned-async,uint8", "--trace", tracePath, "--cpuprofile", profPath)
	if err != nil {
		t.Fatal(err)
	}
	checkTrace(t, tracePath, "step", "forward", "backward", "update", "copy batch (async)", "normalize", "assemble")
	if st, err := os.Stat(profPath); err != nil || st.Size() == 0 {
		t.Errorf("cpu profile: %v", err)
	}
}

// checkTrace reads a trace file and wants a span of each name.
func checkTrace(t *testing.T, path string, names ...string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		TraceEvents []struct{ Name, Ph string }
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("%s is not valid JSON: %v", path, err)
	}
	seen := map[string]bool{}
	for _, e := range file.TraceEvents {
		if e.Ph == "X" {
			seen[e.Name] = true
		}
	}
	for _, n := range names {
		if !seen[n] {
			t.Errorf("%s has no %q span", path, n)
		}
	}
}

// TestBenchBadInput: each mistake is one line naming the problem.
func TestBenchBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bench", "transfer", "--batches", "0"}, `--batches: "0" is not a positive integer`},
		{[]string{"bench", "transfer", "--batches", "1,x"}, `--batches: "x"`},
		{[]string{"bench", "transfer", "--transfer", "warp"}, `--transfer: "warp" is neither a mode`},
		{[]string{"bench", "transfer", "--transfer", "pinned,float64"}, `"float64" is neither a mode`},
		{[]string{"bench", "transfer", "--transfer", "resident,float32"}, "resident moves uint8 only"},
		{[]string{"bench", "transfer", "--json", "--csv"}, "choose one"},
		{[]string{"bench", "transfer", "--repeats", "0"}, "--repeats must be positive"},
		{[]string{"bench", "transfer", "--samples", "10", "--batches", "16"}, "batch size 16 is outside 1..10"},
		{[]string{"bench", "transfer", "--device", "tpu"}, `"tpu"`},
		{[]string{"bench", "transfer", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"bench", "transfer", "stray"}, "takes no arguments"},
		{[]string{"bench", "epoch", "--data", subset, "--transfer", "warp"}, `unknown transfer strategy "warp"`},
		{[]string{"bench", "epoch", "--data", subset, "--batches", "6000"}, "larger than the 5000 training samples"},
		{[]string{"bench", "epoch", "--data", t.TempDir()}, "MNIST not found"},
		{[]string{"train", "--data", subset, "--transfer", "pinned,pageable"}, "more than one mode"},
		{[]string{"train", "--data", subset, "--trace", filepath.Join(t.TempDir(), "no", "such", "dir", "t.json")}, "--trace"},
	}
	for _, c := range cases {
		_, err := run(t, c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("%v: error %q, want one line containing %q", c.args, msg, c.want)
		}
	}
}
