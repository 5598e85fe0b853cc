package study

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/bench/internal/runstore"
	"github.com/batchlab/batchlab/engine/device"
)

// The published results (docs/study-full, docs/grid-mnist) still load, and
// loading and saving one again writes what it holds as it was. Both are
// tested here, where the study's and the grid's types are at hand.

// currentKeys renames device.Info's keys in b to the snake_case ones they
// have had since the published files were written (3bda047); encoding/json
// reads some of the old ones (case-insensitively), not total_memory.
func currentKeys(b []byte) []byte {
	var pairs []string
	for f := range reflect.TypeFor[device.Info]().Fields() {
		pairs = append(pairs, `"`+f.Name+`":`, `"`+strings.Split(f.Tag.Get("json"), ",")[0]+`":`)
	}
	return []byte(strings.NewReplacer(pairs...).Replace(string(b)))
}

// saved is v as runstore.Save writes it with marshal.
func saved(t *testing.T, v any, marshal func(any) ([]byte, error)) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "again.json")
	if err := runstore.Save(path, v, marshal); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// holds says where the JSON got lacks or differs from something in want;
// "" if it holds all of want (and perhaps fields added since).
func holds(got, want any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at + ": not an object"
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok {
				return at + "." + k + ": missing"
			} else if where := holds(gv, wv, at+"."+k); where != "" {
				return where
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return at + ": not an array of the same length"
		}
		for i := range w {
			if where := holds(g[i], w[i], fmt.Sprintf("%s[%d]", at, i)); where != "" {
				return where
			}
		}
	default:
		if got != want {
			return fmt.Sprintf("%s: %v, was %v", at, got, want)
		}
	}
	return ""
}

// savedAsWas checks that v, read from the file b, saves as the file was:
// every value of b as it was, and indented as runstore.Indented indents.
func savedAsWas(t *testing.T, what string, v any, marshal func(any) ([]byte, error), b []byte) {
	t.Helper()
	got := saved(t, v, marshal)
	var g, w any
	if err := errors.Join(json.Unmarshal(got, &g), json.Unmarshal(currentKeys(b), &w)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if where := holds(g, w, ""); where != "" {
		t.Errorf("%s is not saved as it was: %s", what, where)
	}
	if indented, _ := runstore.Indented(json.RawMessage(got)); !bytes.Equal(got, indented) {
		t.Errorf("%s is saved in another layout:\n%.300s", what, got)
	}
}

func TestPublishedStudyReads(t *testing.T) {
	const dir = "../../docs/study-full"
	b, err := os.ReadFile(filepath.Join(dir, "preset.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p Preset
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	savedAsWas(t, "preset.json", p, marshalFinite, b)
	runs := filepath.Join(dir, "runs")
	files, _ := filepath.Glob(filepath.Join(runs, "*.json"))
	specs := plan(p)
	if len(specs) == 0 || len(files) != len(specs) {
		t.Fatalf("%d run files for %d planned runs", len(files), len(specs))
	}
	for _, spec := range specs {
		path := runstore.ResultPath(runs, spec.ID)
		run, err := loadRun(path, spec)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(currentKeys(b), &run); err != nil { // the device's memory, under its old key
			t.Fatal(err)
		}
		savedAsWas(t, path, run, marshalFinite, b)
	}
}

func TestPublishedGridsRead(t *testing.T) {
	dirs, _ := filepath.Glob("../../docs/grid-mnist/*")
	if len(dirs) == 0 {
		t.Fatal("no grids in docs/grid-mnist")
	}
	for _, dir := range dirs {
		p, err := grid.ReadPlan(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "plan.json"))
		if got := saved(t, p, runstore.Indented); !bytes.Equal(got, b) {
			t.Errorf("%s/plan.json is not saved as it was:\n%.300s\nwant\n%.300s", dir, got, b)
		}
		var a grid.Analysis
		b, err = os.ReadFile(filepath.Join(dir, "grid.json"))
		if err == nil {
			err = json.Unmarshal(currentKeys(b), &a)
		}
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if got := saved(t, a, runstore.Indented); !bytes.Equal(got, currentKeys(b)) {
			t.Errorf("%s/grid.json is not saved as it was:\n%.300s\nwant\n%.300s", dir, got, b)
		}
	}
}
