package study

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/data"
)

// marshalFinite follows encoding/json where it can: text marshalers write
// their text, omitzero and omitempty leave fields out; NaN becomes null.
func TestMarshalFiniteLikeEncodingJSON(t *testing.T) {
	v := struct {
		Zero    data.Strategy `json:"zero,omitzero"`
		Set     data.Strategy `json:"set,omitzero"`
		Empty   string        `json:"empty,omitempty"`
		NotANum float64       `json:"nan"`
		ByBatch map[int]int   `json:"by_batch"` // integer keys, as the grid's analysis has
	}{Set: data.Strategy{Mode: data.PinnedAsync}, NotANum: math.NaN(), ByBatch: map[int]int{256: 2, 16: 1}}
	got, err := marshalFinite(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"set":"pinned-async","nan":null,"by_batch":{"16":1,"256":2}}`; strings.Join(strings.Fields(string(got)), "") != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestMarshalFiniteEmbedded: an embedded struct's fields are the outer
// struct's own, as in encoding/json (grid.FitResult embeds its Fit; before
// this, results.json nested it and reading it back lost the fit).
func TestMarshalFiniteEmbedded(t *testing.T) {
	type inner struct {
		A int     `json:"a"`
		B float64 `json:"b"`
	}
	type named struct{ C int }
	v := struct {
		inner
		*named
		Tagged inner `json:"tagged"`
		D      int   `json:"d"`
	}{inner{1, 2.5}, &named{3}, inner{4, 5}, 6}
	got, err := marshalFinite(v)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(strings.Fields(string(got)), "") != string(want) {
		t.Errorf("got %s, encoding/json %s", got, want)
	}
}
