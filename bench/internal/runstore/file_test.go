package runstore

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type result struct {
	ID    string  `json:"id"`
	Value float64 `json:"value"`
}

// TestLoad: a missing file is "not there" (os.ErrNotExist, so it is simply
// run), an unparsable one and one the check refuses are named as such.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	isA := func(r result) error {
		if r.ID != "a" {
			return errors.New("its id is " + r.ID)
		}
		return nil
	}
	if _, err := Load(path, isA); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// A slice, not a map: the last file written is the one read back below.
	for _, c := range []struct{ body, want string }{
		{`{"id":`, "unreadable result: "},
		{`{"id":"b","value":1}`, "not a result of this run: its id is b"},
		{`{"id":"a","value":1}`, ""},
		{"{\n  \"id\": \"a\"\n}\n", ""},
	} {
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, isA)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want %q", c.body, err, c.want)
		}
	}
	if r, err := Load(path, isA); err != nil || r != (result{ID: "a"}) {
		t.Errorf("loaded %+v, %v", r, err)
	}
}

// TestSave: Save writes what the encoder gives; an encoder's failure
// (encoding/json refuses NaN) leaves the saved file as it was.
func TestSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.json")
	if err := Save(path, result{ID: "a", Value: 0.5}, Indented); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"id\": \"a\",\n  \"value\": 0.5\n}\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("saved %q, want %q", b, want)
	}
	err := Save(path, result{ID: "a", Value: math.NaN()}, Indented)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("saving NaN: %v, want an error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("a failed save changed the file to %q", b)
	}
}
