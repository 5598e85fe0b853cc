package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine/buildinfo"
)

// runBoth runs the CLI in-process and returns stdout, stderr and the error.
func runBoth(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = newApp(&o, &e).RunContext(context.Background(), append([]string{"batchlab"}, args...))
	return o.String(), e.String(), err
}

// TestIdleFlagsRefused: every flag that would do nothing where it is given,
// and every pair of flags that conflict, is one line naming what is
// missing (issue 16, item 1, and the like of it).
func TestIdleFlagsRefused(t *testing.T) {
	train := []string{"train", "--data", subset, "--hidden", "8"}
	cases := []struct {
		args []string
		want string
	}{
		// --increase-batch without --max-batch: the cap would be the batch
		// itself, and every increase an LR decay: plain step decay.
		{append(train, "--increase-batch", "--decay-epochs", "1,2", "--epochs", "3"), "increase-batch would never grow the batch: its first growth, 128 → 1280, passes the max batch 128"},
		{append(train, "--increase-batch", "--decay-epochs", "1,2", "--epochs", "3", "--max-batch", "1000"), "set a max batch of at least 1280"},
		{append(train, "--increase-batch", "--max-batch", "1280", "--epochs", "3"), "increase-batch grows the batch at the decay epochs, and there are none"},
		{append(train, "--max-batch", "512"), "a max batch (512) caps only an increase-batch schedule"},
		{append(train, "--warmup", "1"), "with no LR scaling rule there is nothing to ramp"},
		{append(train, "--base-batch", "64"), "--base-batch 64 does nothing with --lr-scale none"},
		{append(train, "--lr-scale", "sqrt", "--base-batch", "0"), "--base-batch must be positive"},
		{append(train, "--decay-factor", "0.5"), "--decay-factor does nothing without --decay-epochs"},
		{append(train, "--adapt-regime"), "the batch 128 is not above the base batch 128"},
		{append(train, "--ghost-batch", "128"), "ghost batch 128 is not smaller than the largest batch 128"},
		{append(train, "--beta1", "0.8"), "--beta1 is Adam's setting"},
		{[]string{"study", "--quick", "--preset", "full", "--data", subset}, "--quick and --preset full: give one of --quick, --preset and --plan"},
		{[]string{"bench", "epoch", "--data", subset, "--lr-scale", "none", "--base-batch", "64"}, "--base-batch 64 does nothing with --lr-scale none"},
		{[]string{"advise", "--data", subset, "--batch-range", "64-16"}, `--batch-range "64-16": want MIN-MAX`},
		{[]string{"advise", "--data", subset, "--batch-range", "64"}, `--batch-range "64"`},
		{[]string{"bench", "transfer", "--json", "--csv"}, "choose one"},
		// advise trains steps, never epochs: it has no --epochs to ignore.
		{[]string{"advise", "--data", subset, "--epochs", "3"}, "flag provided but not defined: -epochs"},
		{[]string{"advise", "--data", subset, "--lr-find", "--lr-scale", "linear"}, "--lr-scale linear does nothing with --lr-find"},
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

// TestSqrtRuleDefaultBase: train --batch 1024 --lr-scale sqrt --warmup 1,
// the example, trains at 0.1·√(1024/128) and says where 128 came
// from; the same rule with --base-batch 1024 is a factor of 1, as asked.
func TestSqrtRuleDefaultBase(t *testing.T) {
	args := []string{"train", "--data", subset, "--hidden", "8", "--batch", "1024", "--lr-scale", "sqrt", "--warmup", "1"}
	out, stderr, err := runBoth(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run     batch 1024, lr 0.2828", "lr 0.1 at batch 128 scaled by the sqrt rule"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if want := "note: --base-batch not given: 128"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	for _, c := range []struct {
		base string
		lr   float64
	}{{"", 0.1 * math.Sqrt(8)}, {"1024", 0.1}} {
		a := append(args, "--json")
		if c.base != "" {
			a = append(a, "--base-batch", c.base)
		}
		out, err := run(t, a...)
		if err != nil {
			t.Fatal(err)
		}
		var rep trainReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		// One epoch of warmup ends at the scaled rate: the last step's.
		if lr := rep.Epochs[0].LR; math.Abs(lr-c.lr) > 1e-9 || rep.Config.BaseBatch == 0 {
			t.Errorf("--base-batch %q: trained at lr %g with base batch %d, want %g", c.base, lr, rep.Config.BaseBatch, c.lr)
		}
	}
}

// TestRuleAtItsBase: a rule at the base batch itself is a factor of 1,
// which train allows (a sweep meets it) and says.
func TestRuleAtItsBase(t *testing.T) {
	_, stderr, err := runBoth(t, "train", "--data", subset, "--hidden", "8", "--train-samples", "500", "--lr-scale", "linear")
	if err != nil {
		t.Fatal(err)
	}
	if want := "note: --base-batch not given: 128, the batch the default --lr is tuned at; --batch 128 is the base batch, where the linear rule's factor is 1"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestBenchEpochDefaultBase: bench epoch's sqrt rule names the base it uses.
func TestBenchEpochDefaultBase(t *testing.T) {
	_, stderr, err := runBoth(t, "bench", "epoch", "--data", subset, "--train-samples", "500", "--batches", "250", "--hidden", "8", "--csv")
	if err != nil {
		t.Fatal(err)
	}
	if want := "note: --base-batch not given: 128"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestNoiseSmallDefault: noise's small batch is --batch, and it says so.
func TestNoiseSmallDefault(t *testing.T) {
	out, err := run(t, "noise", "--data", subset, "--train-samples", "500", "--hidden", "8", "--batch", "50",
		"--points", "1", "--noise-pairs", "1", "--noise-big", "250")
	if err != nil {
		t.Fatal(err)
	}
	if want := "estimator batches 50 and 250, 1 pairs per estimate"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func TestVersion(t *testing.T) {
	for _, flag := range []string{"--version", "-v"} {
		out, err := run(t, flag)
		if want := buildinfo.Read().String() + "\n"; err != nil || out != want || !strings.HasPrefix(out, "batchlab ") {
			t.Errorf("%s: %q, %v; want %q", flag, out, err, want)
		}
	}
}

// TestHelpTrain: `help train` is train's help, with its examples, and
// shows each default once.
func TestHelpTrain(t *testing.T) {
	out, err := run(t, "help", "train")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"batchlab train - train an MLP", "--lr-scale value", "(default: 128 where a rule needs one)", "EXAMPLES:\n   batchlab train"} {
		if !strings.Contains(out, want) {
			t.Errorf("help train lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "(default: false)") {
		t.Errorf("help train shows switches' (default: false):\n%s", out)
	}
}

// TestEveryCommandHelp: every command's help has examples, each naming only
// flags that command has, and no line shows two defaults.
func TestEveryCommandHelp(t *testing.T) {
	app := newApp(new(bytes.Buffer), new(bytes.Buffer))
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			p := append(append([]string{}, path...), c.Name)
			if c.Name == "help" {
				continue
			}
			if _, examples, ok := strings.Cut(c.CustomHelpTemplate, "\nEXAMPLES:\n"); !ok {
				t.Errorf("%s: no EXAMPLES in its help", strings.Join(p, " "))
			} else {
				for _, line := range strings.Split(strings.TrimSpace(examples), "\n") {
					checkExample(t, app, strings.TrimSpace(line))
				}
			}
			out, err := run(t, append(p, "--help")...)
			if err != nil {
				t.Errorf("%s --help: %v", strings.Join(p, " "), err)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Count(line, "(default:") > 1 || strings.Contains(line, "(default: false)") {
					t.Errorf("%s --help: %q", strings.Join(p, " "), line)
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
}

// checkExample checks that an example line's command exists and has every
// flag the line gives it.
func checkExample(t *testing.T, app *cli.App, line string) {
	t.Helper()
	line, _, _ = strings.Cut(line, "#")
	words := strings.Fields(line)
	for len(words) > 0 && !strings.HasSuffix(words[0], "batchlab") {
		words = words[1:] // "source <(batchlab …"
	}
	if len(words) < 2 {
		t.Errorf("example %q runs no batchlab command", line)
		return
	}
	var cmd *cli.Command
	cmds := app.Commands
	for _, w := range words[1:] {
		if strings.HasPrefix(w, "-") {
			if cmd == nil {
				t.Errorf("example %q: a flag before the command", line)
				return
			}
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if !hasFlagNamed(cmd, name) {
				t.Errorf("example %q: %s has no flag --%s", line, cmd.FullName(), name)
			}
			continue
		}
		next := (*cli.Command)(nil)
		for _, c := range cmds {
			if c.HasName(w) {
				next = c
			}
		}
		if next == nil && cmd == nil {
			t.Errorf("example %q: no command %q", line, w)
			return
		}
		if next != nil {
			cmd, cmds = next, next.Subcommands
		}
	}
}

func hasFlagNamed(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// TestSuggestions: a mistyped command, subcommand, help topic or flag is
// an error that names the nearest one.
func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trian"}, `no command "trian": Did you mean "train"?`},
		{[]string{"bench", "tranfer"}, `no command "tranfer": Did you mean "transfer"?`},
		{[]string{"study", "reprot"}, `no command "reprot": Did you mean "report"?`},
		{[]string{"help", "advice"}, `No help topic for 'advice'. Did you mean "advise"?`},
		{[]string{"train", "--bach", "64"}, "flag provided but not defined: -bach (did you mean --batch?"},
		{[]string{"advise", "--rule", "sqrt"}, "flag provided but not defined: -rule"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestCompletion: the scripts name batchlab, and the binary answers the
// scripts' question with its commands and a command's flags.
func TestCompletion(t *testing.T) {
	// Each in a process of its own, as a shell runs it: cli reads the word
	// being completed from os.Args, and its help command is a package
	// variable that, once run (`help train` in another test), lists itself
	// among its own subcommands, a cycle its fish writer recurses through.
	batchlab := func(args ...string) (string, error) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "BATCHLAB_AS_MAIN=1")
		out, err := cmd.Output()
		return string(out), err
	}
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete batchlab",
		"zsh":  "compdef _cli_zsh_autocomplete batchlab",
		"fish": "complete -c batchlab",
	} {
		out, err := batchlab("completion", shell)
		if err != nil || !strings.Contains(out, want) || strings.Contains(out, "$PROG") {
			t.Errorf("completion %s: %v, output lacks %q:\n%.300s", shell, err, want, out)
		}
	}
	if _, err := run(t, "completion", "tcsh"); err == nil || !strings.Contains(err.Error(), `no script for "tcsh"`) {
		t.Errorf("completion tcsh: %v", err)
	}
	if out, err := batchlab("--generate-bash-completion"); err != nil || !strings.Contains(out, "train\n") || !strings.Contains(out, "completion\n") {
		t.Errorf("commands for completion: %v\n%s", err, out)
	}
	if out, err := batchlab("train", "--lr", "--generate-bash-completion"); err != nil || !strings.Contains(out, "--lr-scale\n") || strings.Contains(out, "--batch") {
		t.Errorf("train's flags for completion of --lr: %v\n%s", err, out)
	}
}

// TestProfilingFlags: --cpuprofile on every long command writes a profile,
// --trace on noise and train writes steps and (train) evaluations, and
// advise's --out gets its plots.
func TestProfilingFlags(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	for _, args := range [][]string{
		{"train", "--data", subset, "--train-samples", "500", "--hidden", "8", "--trace", at("train.json"), "--cpuprofile", at("train.prof")},
		{"noise", "--data", subset, "--train-samples", "500", "--hidden", "8", "--points", "1", "--noise-pairs", "1", "--noise-big", "250",
			"--trace", at("noise.json"), "--cpuprofile", at("noise.prof")},
		{"advise", "--data", subset, "--train-samples", "1000", "--hidden", "8", "--batch", "50", "--batch-range", "16-64", "--noise-steps", "5",
			"--noise-big", "250", "--noise-pairs", "1", "--repeats", "1", "--out", at("advise"), "--cpuprofile", at("advise.prof")},
		{"study", "--preset", "tiny", "--data", subset, "--out", at("study"), "--shard", "0/16", "--cpuprofile", at("study.prof")},
	} {
		if _, err := run(t, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	for _, name := range []string{"train.prof", "noise.prof", "advise.prof", "study.prof", "advise/advise.svg", "advise/advise.png"} {
		if st, err := os.Stat(at(name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	checkTrace(t, at("train.json"), "step", "forward", "evaluate", "copy pixels")
	checkTrace(t, at("noise.json"), "step", "update")
}

// TestAdaptRegimeDefaultBase: --adapt-regime without --base-batch adapts
// to 128, and the header says how many epochs that made.
func TestAdaptRegimeDefaultBase(t *testing.T) {
	out, stderr, err := runBoth(t, "train", "--data", subset, "--hidden", "8", "--batch", "256", "--adapt-regime", "--train-samples", "2000")
	if err != nil {
		t.Fatal(err)
	}
	if want := "regime adapted to the base batch 128: 2 epochs for the 1 asked"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if want := "note: --base-batch not given: 128"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}
