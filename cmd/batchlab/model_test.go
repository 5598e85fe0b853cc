package main

import (
	"strings"
	"testing"
)

// TestModelFlag: train, noise, advise and study take --model; train prints
// the model with its parameter count; a bad spec, or --model with --hidden,
// is one line naming the problem.
func TestModelFlag(t *testing.T) {
	out, err := run(t, "train", "--device", "cpu", "--data", subset, "--model", "cnn:4", "--train-samples", "500", "--batch", "100", "--eval-batch", "500")
	if err != nil {
		t.Fatal(err)
	}
	// 1·4·9+4 conv weights, 4·14·14·10+10 in the head.
	if want := "model   Conv2d(1→4, 3×3, pad 1) → MaxPool(2) → ReLU → Flatten → Linear(784→10), 7890 parameters"; !strings.Contains(out, want) {
		t.Errorf("the header lacks %q:\n%s", want, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--model", "lenet5", "--hidden", "64"}, "--model and --hidden both name the model"},
		{[]string{"train", "--model", "cnn:0"}, `--model: model "cnn:0": width "0" is not a positive whole number`},
		{[]string{"advise", "--model", "vgg16"}, `--model: unknown model "vgg16"`},
		{[]string{"noise", "--model", "lenet5:3"}, "lenet5 takes no widths"},
		{[]string{"study", "--preset", "tiny", "--model", "cnn"}, "cnn needs its widths"},
	} {
		_, err := run(t, append(tc.args, "--data", subset)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.args, err, tc.want)
		}
	}
}
