package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// sample is a small checkpoint with the awkward cases: a scalar, an empty
// tensor, non-ASCII names and values whose bits must survive (NaN payloads,
// -0, infinities, subnormals).
func sample() *Checkpoint {
	w := make([]float32, 3*4)
	for i := range w {
		w[i] = float32(i) - 5.5
	}
	return &Checkpoint{
		Meta: json.RawMessage(`{"config":{"batch":128,"lr":0.1},"epoch":2,"step":17,"losses":[2.3,1.1]}`),
		Tensors: []Tensor{
			{Name: "fc1.weight", Shape: []int{3, 4}, Data: w},
			{Name: "fc1.bias", Shape: []int{4}, Data: []float32{
				math.Float32frombits(0x7fc00001), float32(math.Copysign(0, -1)),
				float32(math.Inf(-1)), math.Float32frombits(1)}},
			{Name: "velocity/fc1.bias", Shape: []int{4}, Data: []float32{1, 2, 3, 4}},
			{Name: "schedule.λ", Shape: []int{}, Data: []float32{0.5}},
			{Name: "empty", Shape: []int{0, 7}, Data: []float32{}},
		},
	}
}

func encode(t testing.TB, c *Checkpoint) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := write(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sameTensors(t *testing.T, got, want []Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d tensors, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d: got %s %v (%d values), want %s %v (%d)", i, g.Name, g.Shape, len(g.Data), w.Name, w.Shape, len(w.Data))
		}
		for j := range w.Data {
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				t.Fatalf("%s[%d]: got bits %08x, want %08x", w.Name, j, math.Float32bits(g.Data[j]), math.Float32bits(w.Data[j]))
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, c := range map[string]*Checkpoint{
		"sample":  sample(),
		"empty":   {},
		"no meta": {Tensors: sample().Tensors[:1]},
		// More than one chunk of data, not a multiple of it.
		"large": {Meta: json.RawMessage(`1`), Tensors: []Tensor{{Name: "w", Shape: []int{3, chunk/4 + 5}, Data: make([]float32, 3*(chunk/4+5))}}},
	} {
		t.Run(name, func(t *testing.T) {
			for i := range c.Tensors {
				for j := range c.Tensors[i].Data {
					if c.Tensors[i].Data[j] == 0 {
						c.Tensors[i].Data[j] = float32(j) * 0.25
					}
				}
			}
			b := encode(t, c)
			got, err := read(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Meta, c.Meta) {
				t.Errorf("meta: got %s, want %s", got.Meta, c.Meta)
			}
			sameTensors(t, got.Tensors, c.Tensors)
			if again := encode(t, got); !bytes.Equal(again, b) {
				t.Error("re-encoding what was read gives different bytes")
			}
		})
	}
}

// The format is specified in the package comment; pin it so that a change
// to the layout cannot go unnoticed (it would need a new version).
func TestLayout(t *testing.T) {
	c := &Checkpoint{Meta: json.RawMessage(`{}`), Tensors: []Tensor{{Name: "b", Shape: []int{2}, Data: []float32{1, -2}}}}
	got := encode(t, c)
	want := []byte("BLABCKPT")
	want = le.AppendUint32(want, 1)  // version
	want = le.AppendUint32(want, 27) // index length
	want = le.AppendUint32(want, 2)
	want = append(want, "{}"...)
	want = le.AppendUint32(want, 1) // tensors
	want = le.AppendUint32(want, 1)
	want = append(want, 'b')
	want = le.AppendUint32(want, 1) // rank
	want = le.AppendUint64(want, 2)
	want = le.AppendUint32(want, crc32.Checksum(want, castagnoli))
	want = le.AppendUint32(want, math.Float32bits(1))
	want = le.AppendUint32(want, math.Float32bits(-2))
	want = le.AppendUint32(want, crc32.Checksum(want, castagnoli))
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n% x\nwant\n% x", got, want)
	}
}

func TestTruncatedAtEveryByte(t *testing.T) {
	b := encode(t, sample())
	for n := range len(b) {
		_, err := read(bytes.NewReader(b[:n]))
		want := fmt.Sprintf("truncated after %d bytes", n)
		if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), want) {
			t.Fatalf("cut to %d of %d bytes: got %v, want an error saying %q", n, len(b), err, want)
		}
	}
	t.Logf("%d truncations refused; e.g. %v", len(b), func() error { _, err := read(bytes.NewReader(b[:len(b)/2])); return err }())
}

func TestFlippedByteAtEveryPosition(t *testing.T) {
	b := encode(t, sample())
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := slices.Clone(b)
			bad[i] ^= mask
			_, err := read(bytes.NewReader(bad))
			var ok bool
			switch {
			case err == nil:
				t.Fatalf("byte %d ^ %#x: accepted", i, mask)
			case i < len(magic):
				ok = strings.Contains(err.Error(), "not a batchlab checkpoint")
			case i < len(magic)+4:
				ok = strings.Contains(err.Error(), "format version")
			default:
				ok = errors.Is(err, errCorrupt)
			}
			if !ok {
				t.Fatalf("byte %d ^ %#x: unexpected error %v", i, mask, err)
			}
		}
	}
}

func TestRefusals(t *testing.T) {
	good := encode(t, sample())
	withVersion := func(v uint32) []byte {
		b := slices.Clone(good)
		le.PutUint32(b[len(magic):], v)
		return b
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"zip file", "PK\x03\x04\x14\x00\x00\x00\x08\x00", `not a batchlab checkpoint: it starts with "PK\x03\x04\x14\x00\x00\x00", not "BLABCKPT"`},
		{"text", "{\"epoch\": 3}", "not a batchlab checkpoint"},
		{"future version", string(withVersion(2)), "checkpoint format version 2: this batchlab reads version 1 only"},
		{"version 0", string(withVersion(0)), "checkpoint format version 0"},
		{"empty", "", "corrupt checkpoint: truncated after 0 bytes, in the header"},
		{"trailing data", string(good) + "x", fmt.Sprintf("corrupt checkpoint: more data after its end, at byte %d", len(good))},
		{"data damaged", string(good[:len(good)-9]) + "\x00" + string(good[len(good)-8:]), "corrupt checkpoint: file checksum mismatch"},
		{"index damaged", string(good[:20]) + "X" + string(good[21:]), "corrupt checkpoint: index checksum mismatch"},
	} {
		_, err := read(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// withChecksums recomputes both checksums of b where its layout has room
// for them, so that damage to the index reaches the index parser.
func withChecksums(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) < prefixLen {
		return b
	}
	end := uint64(prefixLen) + uint64(le.Uint32(b[len(magic)+4:]))
	if end+4 <= uint64(len(b)) {
		le.PutUint32(b[end:], crc32.Checksum(b[:end], castagnoli))
	}
	if end+8 <= uint64(len(b)) {
		le.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	}
	return b
}

// A crafted file with valid checksums: the index must still be checked.
func TestBadIndex(t *testing.T) {
	index := func(tensors ...[]byte) []byte {
		b := le.AppendUint32(nil, 0) // no metadata
		b = le.AppendUint32(b, uint32(len(tensors)))
		for _, t := range tensors {
			b = append(b, t...)
		}
		return b
	}
	tensor := func(name string, dims ...uint64) []byte {
		b := le.AppendUint32(nil, uint32(len(name)))
		b = append(b, name...)
		b = le.AppendUint32(b, uint32(len(dims)))
		for _, d := range dims {
			b = le.AppendUint64(b, d)
		}
		return b
	}
	file := func(index []byte, data int) []byte {
		b := append([]byte(magic), le.AppendUint32(nil, version)...)
		b = le.AppendUint32(b, uint32(len(index)))
		b = append(b, index...)
		return withChecksums(append(b, make([]byte, 4+data+4)...))
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"meta not JSON", file(append(le.AppendUint32(nil, 3), "{x}\x00\x00\x00\x00"...), 0), "metadata is not valid JSON"},
		{"empty name", file(index(tensor("")), 0), "empty name"},
		{"same name twice", file(index(tensor("w", 1), tensor("w", 1)), 8), `two tensors are called "w"`},
		{"bad UTF-8", file(index(tensor("\xff", 1)), 4), "not valid UTF-8"},
		{"dimension too large", file(index(tensor("w", 1<<63)), 0), "a dimension of 9223372036854775808"},
		{"size overflows", file(index(tensor("w", 1<<32, 1<<32)), 0), "impossible shape"},
		{"count too large", file(index(tensor("w", 1))[:len(index(tensor("w", 1)))-13], 0), "needs"},
		{"left over", file(append(index(tensor("w", 1)), 0), 4), "1 bytes left over"},
	} {
		_, err := read(bytes.NewReader(tc.file))
		if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// A valid index that announces 2⁴⁰ values followed by a few bytes must fail
// as truncated without allocating for what it announces.
func TestHugeTensorIsNotAllocated(t *testing.T) {
	index := le.AppendUint32(nil, 0)
	index = le.AppendUint32(index, 1)
	index = le.AppendUint32(index, 1)
	index = append(index, 'w')
	index = le.AppendUint32(index, 1)
	index = le.AppendUint64(index, 1<<40)
	b := append([]byte(magic), le.AppendUint32(nil, version)...)
	b = le.AppendUint32(b, uint32(len(index)))
	b = append(b, index...)
	b = withChecksums(append(b, make([]byte, 4+1000)...))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := read(bytes.NewReader(b))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "in tensor w") {
		t.Fatalf("got %v, want a truncation in tensor w", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("reading a %d-byte file allocated %d bytes", len(b), n)
	}
}

func TestWriteRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *Checkpoint
		want string
	}{
		{"meta", &Checkpoint{Meta: json.RawMessage(`{"epoch":`)}, "metadata is not valid JSON"},
		{"size", &Checkpoint{Tensors: []Tensor{{Name: "w", Shape: []int{2, 3}, Data: make([]float32, 5)}}}, "tensor w has shape [2 3] but 5 values"},
		{"negative", &Checkpoint{Tensors: []Tensor{{Name: "w", Shape: []int{-1, -2}, Data: make([]float32, 2)}}}, "shape [-1 -2]"},
		{"unnamed", &Checkpoint{Tensors: []Tensor{{Shape: []int{1}, Data: make([]float32, 1)}}}, "empty name"},
		{"twice", &Checkpoint{Tensors: []Tensor{{Name: "w", Data: []float32{1}}, {Name: "w", Data: []float32{2}}}}, `two tensors are called "w"`},
	} {
		var b bytes.Buffer
		err := write(&b, tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: %d bytes written before the refusal", tc.name, b.Len())
		}
	}
}

func TestMatch(t *testing.T) {
	c := &Checkpoint{Tensors: []Tensor{
		{Name: "fc1.weight", Shape: []int{784, 256}},
		{Name: "fc1.bias", Shape: []int{256}},
		{Name: "step", Shape: []int{}},
	}}
	if err := c.Match([]Tensor{{Name: "step"}, {Name: "fc1.bias", Shape: []int{256}}, {Name: "fc1.weight", Shape: []int{784, 256}}}); err != nil {
		t.Errorf("same tensors in another order: %v", err)
	}
	err := c.Match([]Tensor{
		{Name: "fc1.weight", Shape: []int{784, 512}},
		{Name: "fc1.bias", Shape: []int{256}},
		{Name: "fc2.weight", Shape: []int{512, 10}},
	})
	want := "checkpoint does not fit the model: checkpoint has fc1.weight 784×256, the model has 784×512; " +
		"the model has fc2.weight 512×10, the checkpoint does not; checkpoint has step scalar, the model does not"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestTensor(t *testing.T) {
	c := sample()
	if v := c.Tensor("velocity/fc1.bias"); v == nil || v.Data[3] != 4 {
		t.Errorf("Tensor(velocity/fc1.bias) = %v", v)
	}
	if v := c.Tensor("nope"); v != nil {
		t.Errorf("Tensor(nope) = %v, want nil", v)
	}
}
