// Package testutil holds the checks that the tests of several engine
// packages share; only tests import it.
package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// OnlyFile checks that path's directory holds exactly path, with the
// contents want: an atomic write left no temporary file behind, and a failed
// one left the previous file as it was.
func OnlyFile(t testing.TB, path string, want []byte) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, filepath.Base(path))
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes that differ from the %d wanted", path, len(got), len(want))
	}
}
