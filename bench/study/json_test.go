package study

import (
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
	}{Set: data.Strategy{Mode: data.PinnedAsync}, NotANum: math.NaN()}
	got, err := marshalFinite(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"set":"pinned-async","nan":null}`; strings.Join(strings.Fields(string(got)), "") != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
