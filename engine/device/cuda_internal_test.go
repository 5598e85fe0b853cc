//go:build !cpu

package device

import (
	"errors"
	"strings"
	"testing"
)

// TestModuleLoadLog checks that PTX the driver rejects gives an error with
// the JIT's log, which names the line.
func TestModuleLoadLog(t *testing.T) {
	d, err := NewCUDA(0)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const bad = ".version 7.8\n.target sm_80\n.address_size 64\n\n.visible .entry broken(\n\t.param .bogus p\n)\n{\n\tret;\n}\n"
	err = d.do(func() error {
		m, err := moduleLoad(bad)
		if err == nil {
			m.unload()
		}
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_INVALID_PTX") || !strings.Contains(err.Error(), "JIT log: ") ||
		!strings.Contains(err.Error(), "line 6") {
		t.Errorf("loading bad PTX gave %v, want CUDA_ERROR_INVALID_PTX with the JIT log naming line 6", err)
	}
}

func TestFirstOf(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	if err := firstOf([]error{nil, nil}); err != nil {
		t.Errorf("no errors gave %v", err)
	}
	if err := firstOf([]error{nil, a}); err != a {
		t.Errorf("one error gave %v", err)
	}
	if err := firstOf([]error{nil, a, b, nil, b}); !errors.Is(err, a) || err.Error() != "a (and 2 more calls failed)" {
		t.Errorf("three errors gave %v", err)
	}
}
