package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run runs the CLI in-process with args and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := newApp(&stdout, &stderr).RunContext(context.Background(), append([]string{"batchlab"}, args...))
	return stdout.String(), err
}

const subset = "../../testdata/mnist-subset"

func TestTrainJSON(t *testing.T) {
	out, err := run(t, "train", "--device", "cpu", "--data", subset, "--hidden", "32", "--epochs", "2", "--batch", "250", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if len(rep.Epochs) != 2 || rep.Train != 5000 || rep.Test != 1000 || rep.Config.Batch != 250 {
		t.Fatalf("report: %d epochs, %d/%d samples, batch %d", len(rep.Epochs), rep.Train, rep.Test, rep.Config.Batch)
	}
	e := rep.Epochs[1]
	if e.Updates != 20 || e.TotalUpdates != 40 || len(e.StepLosses) != 20 || e.H2DBytes == 0 || e.TestAccuracy < 0.5 {
		t.Errorf("epoch 2: %+v", e)
	}
}

func TestTrainTable(t *testing.T) {
	out, err := run(t, "train", "--device", "cpu", "--data", subset, "--hidden", "16", "--train-samples", "1000")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"device  cpu:0", "1000 train / 1000 test", "test acc", "H2D MB", "eval s  epoch s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestTrainAdam: --optimizer adamw trains and the run header names it
// with its settings.
func TestTrainAdam(t *testing.T) {
	out, err := run(t, "train", "--device", "cpu", "--data", subset, "--hidden", "16", "--train-samples", "1000", "--optimizer", "adamw", "--lr", "0.003", "--beta2", "0.99")
	if err != nil {
		t.Fatal(err)
	}
	if want := "lr 0.003, adamw (beta1 0.9, beta2 0.99, eps 1e-08), weight decay 0"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestBadInput: each mistake is one clear error, naming the problem.
func TestBadInput(t *testing.T) {
	truncated := t.TempDir()
	for _, name := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		data, err := os.ReadFile(filepath.Join(subset, name+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		if name == "train-images-idx3-ubyte" {
			data = data[:len(data)/2]
		}
		if err := os.WriteFile(filepath.Join(truncated, name+".gz"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"train", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"train", "--lr", "fast"}, `invalid value "fast" for flag -lr`},
		{[]string{"train", "--data", t.TempDir()}, "MNIST not found"},
		{[]string{"train", "--data", truncated}, "truncated"},
		{[]string{"train", "--data", subset, "--batch", "0"}, "batch size must be positive"},
		{[]string{"train", "--data", subset, "--batch", "6000"}, "larger than the 5000 training samples"},
		{[]string{"train", "--data", subset, "--lr", "-1"}, "learning rate must be a positive number"},
		{[]string{"train", "--data", subset, "--momentum", "1"}, "momentum must be in [0, 1)"},
		{[]string{"train", "--data", subset, "--hidden", "0"}, "hidden widths must be positive"},
		{[]string{"train", "--data", subset, "--optimizer", "rmsprop"}, `--optimizer must be sgd, adam or adamw, got "rmsprop"`},
		{[]string{"train", "--data", subset, "--beta2", "0.99"}, "--beta2 is Adam's setting: it needs --optimizer adam or adamw"},
		{[]string{"train", "--data", subset, "--optimizer", "adam", "--momentum", "0.5"}, "--momentum is SGD's setting: adam takes --beta1 and --beta2 instead"},
		{[]string{"train", "--data", subset, "--optimizer", "adamw", "--beta1", "1"}, "beta1 and beta2 must be in [0, 1), got 1 and 0.999"},
		{[]string{"train", "--data", subset, "--optimizer", "adam", "--eps", "0"}, "eps must be a positive number, got 0"},
		{[]string{"train", "--data", subset, "--device", "tpu"}, `"tpu"`},
		{[]string{"train", "--data", subset, "--train-samples", "-5"}, "--train-samples"},
		{[]string{"train", "stray"}, "train takes no arguments"},
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

func TestDevices(t *testing.T) {
	out, err := run(t, "devices")
	if err != nil || !strings.Contains(out, "cpu:0") || !strings.Contains(out, "default device:") {
		t.Errorf("devices: %v\n%s", err, out)
	}
}
