// Package cpuflags lets the tests of an assembly path tell "this CPU lacks
// the instructions" (skip) from "the CPU has them and the assembly did not
// run" (fail). The packages choose their path with golang.org/x/sys/cpu;
// this package asks the operating system instead (/proc/cpuinfo on Linux),
// so that a wrong choice, or a build that silently drops the assembly,
// cannot pass for a CPU without the features.
package cpuflags

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// RequireAssembly skips t when the CPU lacks one of flags (as
// /proc/cpuinfo names them, e.g. "avx2", "fma"), naming the missing ones,
// and fails it when the CPU has them all but used, the package's own
// choice, is false. Where /proc/cpuinfo cannot be read it trusts used,
// except on CI (CI set), where not knowing is a failure, not a skip.
func RequireAssembly(t *testing.T, used bool, flags ...string) {
	t.Helper()
	have, err := cpuinfoFlags()
	if err != nil {
		switch {
		case used:
			return
		case os.Getenv("CI") != "":
			t.Fatalf("cannot tell whether the CPU has %s (%v), and the assembly is off", strings.Join(flags, "+"), err)
		default:
			t.Skipf("the assembly is off and the CPU's features are unknown (%v)", err)
		}
	}
	var missing []string
	for _, f := range flags {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	switch {
	case len(missing) > 0 && used:
		t.Fatalf("the assembly is on, but /proc/cpuinfo lacks %s", strings.Join(missing, ", "))
	case len(missing) > 0:
		t.Skipf("the CPU lacks %s: only the Go code runs", strings.Join(missing, ", "))
	case !used:
		t.Fatalf("the CPU has %s (/proc/cpuinfo) but the assembly is off", strings.Join(flags, "+"))
	}
}

// cpuinfoFlags returns the flags of the first processor in /proc/cpuinfo.
func cpuinfoFlags() (map[string]bool, error) {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, list, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			have := map[string]bool{}
			for _, f := range strings.Fields(list) {
				have[f] = true
			}
			return have, nil
		}
	}
	return nil, errors.New("/proc/cpuinfo lists no flags")
}
