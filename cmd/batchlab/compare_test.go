package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompareTwoRuns logs two runs that differ in batch and LR and
// compares them: the differing settings and each run's metrics are shown,
// the settings both share are not, and --out writes the plots.
func TestCompareTwoRuns(t *testing.T) {
	tmp := t.TempDir()
	small, big := filepath.Join(tmp, "b50"), filepath.Join(tmp, "b250")
	common := []string{"train", "--device", "cpu", "--data", subset, "--hidden", "16", "--train-samples", "500", "--epochs", "3"}
	if _, err := run(t, append(common, "--batch", "50", "--run-dir", small)...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, append(common, "--batch", "250", "--lr", "0.05", "--run-dir", big)...); err != nil {
		t.Fatal(err)
	}
	plots := filepath.Join(tmp, "plots")
	out, err := run(t, "compare", "--out", plots, small, big)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^run\s+b50\s+b250\s*$`,
		`(?m)^  --batch\s+50\s+250\s*$`,
		`(?m)^  --lr\s+0\.1\s+0\.05\s*$`,
		`(?m)^epochs\s+3\s+3\s*$`,
		`(?m)^status\s+done\s+done\s*$`,
		`(?m)^final test acc\s+\d+\.\d\d%\s+\d+\.\d\d%\s*$`,
		`(?m)^best test loss\s+\d\.\d{4} \(epoch [123]\)\s+\d\.\d{4} \(epoch [123]\)\s*$`,
		`(?m)^updates\s+30\s+6\s*$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("compare's output has no line matching %s:\n%s", want, out)
		}
	}
	for _, same := range []string{"--hidden", "--epochs", "--run-dir"} {
		if strings.Contains(out, "  "+same+" ") {
			t.Errorf("compare shows %s, which does not differ:\n%s", same, out)
		}
	}
	for _, name := range []string{"compare-accuracy.svg", "compare-accuracy.png", "compare-loss.svg", "compare-loss.png"} {
		if st, err := os.Stat(filepath.Join(plots, name)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s: %v", name, err)
		}
	}
}

func TestCompareRefusesWhatIsNoRun(t *testing.T) {
	tmp := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "needs the run directories"},
		{[]string{filepath.Join(tmp, "missing")}, "no such directory"},
		{[]string{tmp}, "not a run log"},
		{[]string{tmp, "--out", tmp}, "flags go before the run directories"},
	} {
		if _, err := run(t, append([]string{"compare"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("compare %q: %v, want one line saying %q", c.args, err, c.want)
		}
	}
}
