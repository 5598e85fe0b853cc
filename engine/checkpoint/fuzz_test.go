package checkpoint

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzRead feeds read arbitrary bytes: it must never panic, and whatever it
// accepts must re-encode to exactly the same bytes (the format has one
// encoding per checkpoint, so acceptance cannot hide a lossy parse). Each
// input is also tried with its checksums recomputed; without that, almost
// every mutation would stop at a checksum and the index parser would go
// unfuzzed.
func FuzzRead(f *testing.F) {
	valid := encode(f, sample())
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(encode(f, &Checkpoint{}))
	f.Add(encode(f, &Checkpoint{Meta: json.RawMessage(`[]`), Tensors: []Tensor{{Name: "s", Data: []float32{1}}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withChecksums(data)} {
			c, err := read(bytes.NewReader(in))
			if err != nil {
				continue
			}
			var out bytes.Buffer
			if err := write(&out, c); err != nil {
				t.Fatalf("Read accepted a checkpoint that Write refuses: %v", err)
			}
			if !bytes.Equal(out.Bytes(), in) {
				t.Fatalf("accepted %d bytes re-encode to %d different bytes", len(in), out.Len())
			}
		}
	})
}
