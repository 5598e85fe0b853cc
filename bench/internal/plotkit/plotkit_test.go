package plotkit

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

func labels(lo, hi float64) []string {
	var ls []string
	for _, t := range logTicks(lo, hi) {
		if t.Label != "" {
			ls = append(ls, t.Label)
		}
	}
	return ls
}

// Short ranges get 1-2-5 labels, long ones powers of ten only, and a range
// narrower than any two labels gets its ends.
func TestLogTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{0.05, 2, []string{"0.05", "0.1", "0.2", "0.5", "1", "2"}},
		{1, 1e4, []string{"1", "10", "100", "1000", "10k"}},
		{3, 4, []string{"3", "4"}},
	} {
		if got := labels(c.lo, c.hi); !slices.Equal(got, c.want) {
			t.Errorf("logTicks(%g, %g) labels %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}

func samplePlot(t *testing.T, y float64) *plot.Plot {
	t.Helper()
	p := New("title", "x", "y")
	LogAxis(&p.Y)
	if err := (Line{Label: "a", Color: SeriesColor(1), XY: plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: y}}, Marks: true}).Add(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	p := samplePlot(t, 3)
	for _, ext := range []string{".svg", ".png", ".pdf"} {
		path := filepath.Join(dir, "p"+ext)
		if err := Save(p, path); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() < 500 {
			t.Errorf("%s: %v", path, err)
		}
	}
	if err := Save(p, filepath.Join(dir, "p.gif")); err == nil || !strings.Contains(err.Error(), ".gif") {
		t.Errorf("saving as .gif: got %v, want an error naming the format", err)
	}
	svg, err := InlineSVG(p)
	if err != nil || !strings.HasPrefix(svg, "<svg") {
		t.Errorf("InlineSVG: %v, starts %.20q", err, svg)
	}
}

// A point gonum cannot draw (y ≤ 0 on a log axis) is an error naming the
// plot, not a panic.
func TestRenderRecoversPanic(t *testing.T) {
	p := samplePlot(t, -1)
	if _, err := InlineSVG(p); err == nil || !strings.Contains(err.Error(), `"title"`) {
		t.Errorf("got %v, want an error naming the plot", err)
	}
	if !Keep(1, 1, true, true) || Keep(1, -1, false, true) || Keep(math.NaN(), 1, false, false) {
		t.Error("Keep is wrong")
	}
}

// Linear tick labels carry the precision their spacing needs: float
// arithmetic's 0.1+0.2 is "0.3", ticks 0.05 apart keep two decimals, close
// ticks keep the digits that tell them apart, and large values share a unit.
func TestLinearTickLabels(t *testing.T) {
	for _, c := range []struct {
		vals []float64
		want []string
	}{
		{[]float64{0, 0.1, 0.1 + 0.1, 0.1 + 0.2, 1e-17}, []string{"0", "0.1", "0.2", "0.3", "0"}},
		{[]float64{0.25, 0.3, 0.35}, []string{"0.25", "0.30", "0.35"}},
		{[]float64{0.3000001, 0.3000002}, []string{"0.3000001", "0.3000002"}},
		{[]float64{0, 5000, 10000, 15000}, []string{"0", "5k", "10k", "15k"}},
		{[]float64{1e6, 1.5e6}, []string{"1.0M", "1.5M"}},
		{[]float64{-0.5, 0, 0.5}, []string{"-0.5", "0", "0.5"}},
	} {
		f := tickFormat(c.vals)
		var got []string
		for _, v := range c.vals {
			got = append(got, f(v))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("labels of %v: %v, want %v", c.vals, got, c.want)
		}
	}
	for _, tk := range linearTicks(0, 0.35) {
		if len(tk.Label) > 4 {
			t.Errorf("tick %v labelled %q", tk.Value, tk.Label)
		}
	}
}
