package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const fashionSubset = "../../testdata/fashion-mnist-subset"

// TestTrainFashionMNIST: three epochs on the 2000-sample Fashion-MNIST
// subset learn it (73.0% test accuracy measured at seed 1; chance is 10%),
// and the output names the dataset.
func TestTrainFashionMNIST(t *testing.T) {
	args := []string{"train", "--device", "cpu", "--dataset", "fashion-mnist", "--data", fashionSubset, "--hidden", "32", "--epochs", "3", "--batch", "100"}
	out, err := run(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if rep.Data != "fashion-mnist" || rep.Train != 2000 || rep.Test != 500 || len(rep.Epochs) != 3 {
		t.Fatalf("report: dataset %q, %d/%d samples, %d epochs", rep.Data, rep.Train, rep.Test, len(rep.Epochs))
	}
	if acc := rep.Epochs[2].TestAccuracy; acc < 0.65 {
		t.Errorf("test accuracy after 3 epochs %.3f, want at least 0.65", acc)
	}
	out, err = run(t, append(args, "--epochs", "1")...)
	if err != nil || !strings.Contains(out, "data    Fashion-MNIST, 2000 train / 500 test samples") {
		t.Errorf("table: %v\n%s", err, out)
	}
	out, err = run(t, "train", "--device", "cpu", "--data", subset, "--hidden", "8", "--train-samples", "500", "--json")
	if err != nil || !strings.Contains(out, `"dataset": "mnist"`) {
		t.Errorf("MNIST's report does not name it: %v\n%s", err, out)
	}
}

// TestDatasetFlag: every command that reads data takes --dataset, and
// refuses an unknown name, or missing files, in one line.
func TestDatasetFlag(t *testing.T) {
	empty := t.TempDir()
	for _, cmd := range [][]string{{"train"}, {"advise"}, {"noise"}, {"bench", "epoch"}, {"study"}, {"data"}} {
		_, err := run(t, append(cmd, "--dataset", "cifar10", "--data", fashionSubset)...)
		want := `--dataset: unknown dataset "cifar10" (want fashion-mnist | mnist)`
		if err == nil || err.Error() != want {
			t.Errorf("%v: error %v, want %s", cmd, err, want)
		}
		args := append(cmd, "--dataset", "fashion-mnist", "--data", empty)
		if cmd[0] != "data" {
			args = append(args, "--device", "cpu")
		}
		_, err = run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "Fashion-MNIST not found in "+empty) ||
			!strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v on an empty dir: %v", cmd, err)
		}
	}
	// bench epoch reads it too.
	out, err := run(t, "bench", "epoch", "--device", "cpu", "--dataset", "fashion-mnist", "--data", fashionSubset, "--train-samples", "500", "--batches", "100", "--hidden", "8")
	if err != nil || !strings.Contains(out, "100") {
		t.Errorf("bench epoch on Fashion-MNIST: %v\n%s", err, out)
	}
}

// TestResumeRefusesOtherDataset: a checkpoint of a Fashion-MNIST run does
// not resume on MNIST of the same size.
func TestResumeRefusesOtherDataset(t *testing.T) {
	ckpt := t.TempDir() + "/run.ckpt"
	common := []string{"train", "--device", "cpu", "--hidden", "16", "--batch", "100", "--train-samples", "500", "--checkpoint", ckpt, "--no-progress"}
	if _, err := run(t, append(common, "--dataset", "fashion-mnist", "--data", fashionSubset)...); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, append(common, "--data", subset, "--epochs", "2", "--resume")...)
	if err == nil || !strings.Contains(err.Error(), "the training set was fashion-mnist-train with 500 samples, now mnist-train with 500") {
		t.Errorf("resumed on MNIST: %v", err)
	}
	if _, err := run(t, append(common, "--dataset", "fashion-mnist", "--data", fashionSubset, "--epochs", "2", "--resume")...); err != nil {
		t.Errorf("resumed on Fashion-MNIST: %v", err)
	}
}

// TestFashionMNISTDefaultDir: without --data, Fashion-MNIST is looked for
// where Debian's package installs it, whatever BATCHLAB_DATA (MNIST's) says.
func TestFashionMNISTDefaultDir(t *testing.T) {
	t.Setenv("BATCHLAB_DATA", subset)
	const dir = "/usr/share/datasets/fashion-mnist"
	_, stderr, err := runCapturing(t, "data", "--dataset", "fashion-mnist")
	installed := err == nil && stderr == "Fashion-MNIST ready in "+dir+"\n"
	missing := err != nil && strings.Contains(err.Error(), "Fashion-MNIST not found in "+dir)
	if !installed && !missing {
		t.Errorf("data --dataset fashion-mnist: %v, said %q; want it to look in %s", err, stderr, dir)
	}
}
