package kernels

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	entryRE = regexp.MustCompile(`(?s)\.visible \.entry (\w+)\(\s*(.*?)\)`)
	paramRE = regexp.MustCompile(`\.param \.(\w+) \w+`)
)

// ptxEntries parses the kernels of a PTX module into their parameter kinds.
func ptxEntries(t *testing.T, ptx string) map[string][]Kind {
	t.Helper()
	kinds := map[string]Kind{"u64": Ptr, "u32": Int, "f32": Float}
	out := map[string][]Kind{}
	for _, m := range entryRE.FindAllStringSubmatch(ptx, -1) {
		var params []Kind
		for _, p := range paramRE.FindAllStringSubmatch(m[2], -1) {
			k, ok := kinds[p[1]]
			if !ok {
				t.Fatalf("%s: parameter type .%s has no Kind", m[1], p[1])
			}
			params = append(params, k)
		}
		out[m[1]] = params
	}
	return out
}

// TestTableMatchesPTX checks every table entry against the .entry
// declaration in its module, and that the PTX has no kernel the table lacks.
func TestTableMatchesPTX(t *testing.T) {
	mods := Modules()
	if len(mods) == 0 {
		t.Fatal("no PTX embedded")
	}
	seen := map[string]bool{}
	for _, mod := range mods {
		if !strings.Contains(mod.PTX, ".target sm_80") {
			t.Errorf("%s.ptx does not target sm_80 (make kernels builds for compute_80)", mod.Name)
		}
		for name, params := range ptxEntries(t, mod.PTX) {
			seen[name] = true
			k, ok := Lookup(name)
			switch {
			case !ok:
				t.Errorf("%s.ptx has kernel %s, which the table lacks", mod.Name, name)
			case k.Module != mod.Name:
				t.Errorf("%s is in %s.ptx, the table says %s", name, mod.Name, k.Module)
			case !slices.Equal(k.Params, params):
				t.Errorf("%s: the table says %v, the PTX %v", name, k.Params, params)
			}
		}
	}
	for _, k := range Kernels() {
		if !seen[k.Name] {
			t.Errorf("the table lists %s, which no PTX module has", k.Name)
		}
	}
}

// TestSourcesHavePTX checks that every .cu file has its committed PTX (the
// content is checked by make kernels-check, which needs nvcc).
func TestSourcesHavePTX(t *testing.T) {
	srcs, err := filepath.Glob("*.cu")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no kernel sources: %v", err)
	}
	for _, src := range srcs {
		if _, err := os.Stat(strings.TrimSuffix(src, ".cu") + ".ptx"); err != nil {
			t.Errorf("%s has no PTX: run make kernels", src)
		}
	}
}

// TestTableIsImmutable checks that callers get copies of the table.
func TestTableIsImmutable(t *testing.T) {
	ks := Kernels()
	want := slices.Clone(ks[0].Params)
	ks[0].Params[0], ks[0].Name = Float, "changed"
	name := table[0].Name
	if k, ok := Lookup(name); !ok || !slices.Equal(k.Params, want) {
		t.Errorf("changing what Kernels returned changed the table: %v", k)
	}
	k, _ := Lookup(name)
	k.Params[0] = Float
	if k, _ := Lookup(name); !slices.Equal(k.Params, want) {
		t.Errorf("changing what Lookup returned changed the table: %v", k)
	}
}
