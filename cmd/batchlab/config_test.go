package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o666); err != nil {
		t.Fatal(err)
	}
	return path
}

// trainWithConfig trains with --config path and args, and returns the
// settings the run used.
func trainWithConfig(t *testing.T, path string, args ...string) trainReport {
	t.Helper()
	out, err := run(t, append([]string{"train", "--device", "cpu", "--data", subset, "--config", path, "--json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep trainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestConfigFiles: a YAML and a TOML file set train's flags (an integer
// where a float flag is, a list, an alias's long name), and a flag on the
// command line wins over the file.
func TestConfigFiles(t *testing.T) {
	for _, c := range []struct{ name, text string }{
		{"run.yaml", "batch: 250\nlr: 1\nhidden: [8, 4]\nmomentum: 0.5\nseed: 7\ntrain-samples: 500\nepochs: 3\n"},
		{"run.toml", "batch = 250\nlr = 1\nhidden = [8, 4]\nmomentum = 0.5\nseed = 7\ntrain-samples = 500\nepochs = 3\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := trainWithConfig(t, writeConfig(t, c.name, c.text), "--epochs", "1", "--lr", "0.05")
			cfg := rep.Config
			if cfg.Batch != 250 || !slices.Equal(cfg.Hidden, []int{8, 4}) || cfg.Momentum != 0.5 || cfg.Seed != 7 || rep.Train != 500 {
				t.Errorf("the file's settings were not applied: %+v, %d train samples", cfg, rep.Train)
			}
			if cfg.Epochs != 1 || cfg.LR != 0.05 || len(rep.Epochs) != 1 {
				t.Errorf("the command line did not win over the file: epochs %d, lr %g", cfg.Epochs, cfg.LR)
			}
			if m := rep.Manifest; m == nil || !slices.Contains(m.SetFlags, "hidden") || m.Flags["config"] == "" {
				t.Errorf("the manifest does not say the file set hidden: %+v", m)
			}
			if rep := trainWithConfig(t, writeConfig(t, c.name, c.text), "--epochs", "1", "--hidden", "6"); !slices.Equal(rep.Config.Hidden, []int{6}) {
				t.Errorf("--hidden 6 did not win over the file's list: %v", rep.Config.Hidden)
			}
		})
	}
}

// TestConfigFileMistakes: a key that is no flag, a file of another
// format, a file that does not parse: each is a one-line error naming it.
func TestConfigFileMistakes(t *testing.T) {
	for _, c := range []struct {
		cmd        []string
		name, text string
		want       string
	}{
		{[]string{"train"}, "typo.yaml", "batch: 250\nbacth: 64\n", `"bacth" is not a setting of batchlab train`},
		{[]string{"train"}, "snake.toml", "lr_scale = \"sqrt\"\n", `did you mean "lr-scale"?`},
		{[]string{"train"}, "nested.toml", "[train]\nbatch = 64\n", `"train" is not a setting`},
		{[]string{"train"}, "self.yaml", "config: other.yaml\n", `"config" is not a setting`},
		{[]string{"train"}, "run.json", "{}", `unknown format ".json"`},
		{[]string{"train"}, "bad.yaml", "batch: [1\n", "bad.yaml"},
		{[]string{"train"}, "type.yaml", "batch: many\n", "batch"},
		{[]string{"study"}, "study.yaml", "preset: nonsense\n", `unknown preset "nonsense"`},
		{[]string{"bench", "epoch"}, "epoch.toml", "batch-size = 64\n", `"batch-size" is not a setting of batchlab bench epoch`},
	} {
		path := writeConfig(t, c.name, c.text)
		// No data where --data points: if the file were let through, the
		// command would fail at once, not train.
		args := append(c.cmd, "--config", path)
		if c.cmd[0] != "study" {
			args = append(args, "--data", filepath.Join(t.TempDir(), "none"))
		}
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s with %s: %v, want one line saying %s", strings.Join(c.cmd, " "), c.text, err, c.want)
		}
	}
	if _, err := run(t, "train", "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing config file: %v", err)
	}
}

// TestConfigFileForBench: bench transfer reads its settings from a file.
func TestConfigFileForBench(t *testing.T) {
	path := writeConfig(t, "transfer.yaml", "batches: \"32,64\"\nrepeats: 1\nmin-time: 1ms\nsamples: 256\ndevice: cpu\n")
	out, err := run(t, "bench", "transfer", "--config", path, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Points []struct {
			Batch int `json:"batch"`
		} `json:"points"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range rep.Points {
		seen[p.Batch] = true
	}
	if len(seen) != 2 || !seen[32] || !seen[64] {
		t.Fatalf("bench transfer with the file's batches 32,64 measured batches %v", seen)
	}
}
