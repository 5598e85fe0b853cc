package engine_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func TestParseModel(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{{"lenet5", "lenet5"}, {"cnn:32,64", "cnn:32,64"}, {" cnn:8 ", "cnn:8"}, {"mlp:512, 512", "mlp:512,512"}} {
		m, err := engine.ParseModel(tc.spec)
		if err != nil || m.String() != tc.want {
			t.Errorf("ParseModel(%q) = %v, %v; want %s", tc.spec, m, err, tc.want)
		}
	}
	for _, tc := range []struct{ spec, want string }{
		{"", `unknown model ""`}, {"resnet50", `unknown model "resnet50"`}, {"lenet5:6", "lenet5 takes no widths"},
		{"cnn", "cnn needs its widths, e.g. cnn:32,64"}, {"mlp:", "mlp needs its widths"}, {"cnn:32,-1", `width "-1" is not a positive`},
		{"cnn:32,,64", `width "" is not`}, {"mlp:a", `width "a"`}, {"cnn:99999999999999999999", "not a positive whole number"},
	} {
		_, err := engine.ParseModel(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseModel(%q): %v, want one line with %q", tc.spec, err, tc.want)
		}
	}
}

// TestWithModel: an MLP spec is the Hidden of before (so its results and
// checkpoints are the same run), a CNN's clears Hidden, and a config
// without a model reads and writes as it did.
func TestWithModel(t *testing.T) {
	def := engine.DefaultConfig()
	mlp, err := def.WithModel("mlp:512,512")
	if err != nil || mlp.Model != "" || !slices.Equal(mlp.Hidden, []int{512, 512}) {
		t.Errorf("mlp:512,512 gave model %q hidden %v (%v)", mlp.Model, mlp.Hidden, err)
	}
	a, _ := json.Marshal(def)
	if b, _ := json.Marshal(mlp); string(a) != string(b) || strings.Contains(string(a), "model") {
		t.Errorf("the MLP's JSON changed:\n%s\n%s", a, b)
	}
	cnn, err := def.WithModel("lenet5")
	if err != nil || cnn.Model != "lenet5" || cnn.Hidden != nil {
		t.Errorf("lenet5 gave model %q hidden %v (%v)", cnn.Model, cnn.Hidden, err)
	}
	if err := cnn.Validate(1000); err != nil {
		t.Error(err)
	}
	bad := cnn
	bad.Hidden = []int{64}
	if err := bad.Validate(1000); err == nil || !strings.Contains(err.Error(), "hidden widths [64] and model lenet5") {
		t.Errorf("a CNN with hidden widths: %v", err)
	}
	bad.Hidden, bad.Model = nil, "mlp:64"
	if err := bad.Validate(1000); err == nil || !strings.Contains(err.Error(), "an MLP's widths go in hidden") {
		t.Errorf("an MLP spec in Model: %v", err)
	}
	if _, err := def.WithModel("vgg"); err == nil {
		t.Error("WithModel took vgg")
	}
}

// TestCNNModels: the models --model names, with PyTorch's parameter counts
// (LeNet-5 as written here has 61,706; cnn:32,64 on 28×28 has
// 320 + 18,496 + 31,370).
func TestCNNModels(t *testing.T) {
	ds := data.Random(100, 28, 28, 10, 1)
	for _, tc := range []struct {
		spec   string
		params int
		layers string
	}{
		{"lenet5", 61706, "Conv2d(1→6, 5×5, pad 2) → MaxPool(2) → ReLU → Conv2d(6→16, 5×5) → MaxPool(2) → ReLU → Flatten → Linear(400→120) → ReLU → Linear(120→84) → ReLU → Linear(84→10)"},
		{"cnn:32,64", 50186, "Conv2d(1→32, 3×3, pad 1) → MaxPool(2) → ReLU → Conv2d(32→64, 3×3, pad 1) → MaxPool(2) → ReLU → Flatten → Linear(3136→10)"},
	} {
		cfg, err := engine.DefaultConfig().WithModel(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Batch, cfg.EvalBatch = 10, 10
		tr, err := engine.NewTrainer(device.NewCPU(), cfg, ds, ds)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Model.ParamCount(); got != tc.params {
			t.Errorf("%s: %d parameters, want %d", tc.spec, got, tc.params)
		}
		if got := tr.Model.String(); got != tc.layers {
			t.Errorf("%s:\n got %s\nwant %s", tc.spec, got, tc.layers)
		}
	}
	cfg, _ := engine.DefaultConfig().WithModel("cnn:8,8,8,8,8") // 28 → 14 → 7 → 3 → 1, and a fifth stage of 1×1
	cfg.Batch = 10
	for _, tc := range []struct {
		ds   *data.Dataset
		want string
	}{
		{data.Random(100, 7, 5, 10, 1), "takes square one-channel images; 35 features are not a square"},
		{ds, "conv 5 leaves a 1×1 map of the 28×28 image, too small to pool"},
	} {
		_, err := engine.NewTrainer(device.NewCPU(), cfg, tc.ds, tc.ds)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
		err = engine.CheckMemory(cfg, engine.ShapeOf(tc.ds, tc.ds), device.NewCPU())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckMemory: %v, want %q", err, tc.want)
		}
	}
}

// cnnConfig is a small CNN run on the MNIST subset.
func cnnConfig(t *testing.T, spec string) engine.Config {
	t.Helper()
	cfg, err := smallConfig().WithModel(spec)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCNNTrainsDeterministically: LeNet-5 learns the digits on the CPU (80
// steps from its default initialization reach about 70%, against 10% for
// chance), and the same seed gives a bit-identical run, another seed another.
func TestCNNTrainsDeterministically(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(2000), test.Subset(500)
	run := func(seed uint64) []engine.EpochStats {
		cfg := cnnConfig(t, "lenet5")
		cfg.Epochs, cfg.Seed = 2, seed
		_, stats := trainAll(t, device.NewCPU(), cfg, train, test)
		return stats
	}
	a, b, c := run(3), run(3), run(4)
	if !equalOutcomes(outcome(a), outcome(b)) {
		t.Error("same seed, different runs")
	}
	if slices.Equal(a[0].StepLosses, c[0].StepLosses) {
		t.Error("seeds 3 and 4 gave the same loss curve")
	}
	last := a[len(a)-1]
	t.Logf("test accuracy %.4f, %.4f", a[0].TestAccuracy, last.TestAccuracy)
	if last.TestAccuracy < 0.6 || last.TrainLoss >= a[0].TrainLoss {
		t.Errorf("LeNet-5 reached %.4f test accuracy, train loss %.4f then %.4f; want ≥ 0.6 and falling", last.TestAccuracy, a[0].TrainLoss, last.TrainLoss)
	}
}

// TestCNNExactResume: a CNN with ghost batch norm over channels resumes
// bit-identically from a checkpoint at the start, middle and end of an epoch.
func TestCNNExactResume(t *testing.T) {
	cfg := resumeConfig()
	cfg.Hidden, cfg.Model = nil, "cnn:4,8"
	checkExactResume(t, cfg)
}
