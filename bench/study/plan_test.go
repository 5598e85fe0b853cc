package study

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestPlanRoundTrip: every preset is valid, and the preset.json a study
// writes into its directory reads back as the same plan.
func TestPlanRoundTrip(t *testing.T) {
	for name, p := range Presets() {
		if err := p.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
		dir := t.TempDir()
		if err := checkPreset(dir, p); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPlan(filepath.Join(dir, "preset.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			a, _ := json.Marshal(p)
			b, _ := json.Marshal(got)
			t.Errorf("preset %s read back differs:\n%s\n%s", name, a, b)
		}
	}
}

// TestYAMLPlan: a custom study in YAML, with the keys of preset.json.
func TestYAMLPlan(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	b, _ := json.Marshal(Presets()["tiny"])
	var base map[string]any
	json.Unmarshal(b, &base)
	base["name"], base["seeds"], base["batches"], base["experiments"] = "mine", []int{4, 5}, []int{32, 128}, []string{FixedLR, Cost}
	custom, _ := json.Marshal(base) // JSON is YAML
	p, err := ReadPlan(write("mine.yaml", string(custom)))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "mine" || !slices.Equal(p.Seeds, []uint64{4, 5}) || !slices.Equal(p.Batches, []int{32, 128}) {
		t.Errorf("read %+v", p)
	}
	var exps []string
	for _, s := range plan(p) {
		if !slices.Contains(exps, s.Experiment) {
			exps = append(exps, s.Experiment)
		}
	}
	if !slices.Equal(exps, []string{FixedLR, Cost}) || len(plan(p)) != 2*2*2 {
		t.Errorf("the plan runs %v in %d runs, want fixed-lr and cost in 8", exps, len(plan(p)))
	}
	for _, tc := range []struct{ text, want string }{
		{"name: x\nseeds: [1]\nbatchs: [64]\n", `unknown field "batchs"`},
		{"name: x\nseeds: [1]\nbatches: [0]\nexperiments: [fixed-lr]\nepochs: 1\nbase_lr: 0.1\n", "batch size must be positive"},
		{"name: x\nseeds: []\nbatches: [64]\n", "no seeds"},
		{"name: x\nseeds: [1]\nbatches: [64]\nexperiments: [warp]\n", `unknown experiment "warp"`},
		{"name: x\nseeds: [1\n", "plan"},
		{"name: x\nseeds: [1]\nbatches: [64]\nexperiments: [lr-scaling]\n", "scaling_margin"},
	} {
		if _, err := ReadPlan(write("bad.yaml", tc.text)); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestPlanInterleavesSeeds: within an experiment each seed runs every
// configuration, in reverse order on every other seed; not blocks of one
// configuration, nor of one seed across the whole study.
func TestPlanInterleavesSeeds(t *testing.T) {
	p := Presets()["quick"]
	p.Experiments = []string{FixedLR}
	var got []string
	for _, s := range plan(p) {
		got = append(got, strings.TrimPrefix(s.ID, "fixed-lr_none_"))
	}
	want := []string{"b64_s1", "b256_s1", "b1024_s1", "b4096_s1", "b4096_s2", "b1024_s2", "b256_s2", "b64_s2", "b64_s3", "b256_s3", "b1024_s3", "b4096_s3"}
	if !slices.Equal(got, want) {
		t.Errorf("run order %v, want %v", got, want)
	}
}

// TestPlannedProtocols: Keskar trains both batches to the target train
// accuracy at LB = 10 % of its training set; the regime's adapted large
// batch makes as many updates as the small batch, its decays at the same
// updates; cost stops at a test accuracy.
func TestPlannedProtocols(t *testing.T) {
	p := Presets()["quick"]
	byID := map[string]runSpec{}
	for _, s := range plan(p) {
		byID[s.ID] = s
	}
	lb := byID["keskar_LB_b500_s1"]
	if lb.Protocol.Kind != TrainToTarget || lb.Protocol.Target != 0.99 || lb.TrainSamples != 5000 || !lb.Sharpness || lb.Config.Optimizer != "adam" {
		t.Errorf("Keskar LB: %+v", lb)
	}
	sb, ra := byID["regime_SB_b64_s1"].Config.Resolved(), byID["regime_LB+GBN+RA_b512_s1"].Config.Resolved()
	if ra.Epochs*(20000/512+1) < sb.Epochs*(20000/64) || ra.DecayEpochs[0]*(20000/512+1) < sb.DecayEpochs[0]*(20000/64) || sb.WeightDecay == 0 {
		t.Errorf("regime: SB %d epochs decays %v, RA %d epochs decays %v", sb.Epochs, sb.DecayEpochs, ra.Epochs, ra.DecayEpochs)
	}
	if c := byID["cost_sqrt_b4096_s2"]; c.Protocol.Kind != TimeToAccuracy || c.Protocol.Metric != TestAccuracy {
		t.Errorf("cost: %+v", c.Protocol)
	}
	if _, ok := byID["schedule_constant_b64_s3"]; !ok {
		t.Error("no constant-LR control in the schedule experiment")
	}
}
