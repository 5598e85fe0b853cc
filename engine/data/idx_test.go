package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func encodeIDX(t testing.TB, x *idxFile) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeIDX(&b, x); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipBytes(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadIDXKnownAnswer(t *testing.T) {
	in := []byte{0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6}
	x, err := readIDX(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &idxFile{Dims: []int{2, 3}, Data: []uint8{1, 2, 3, 4, 5, 6}}
	if !reflect.DeepEqual(x, want) {
		t.Fatalf("got %+v, want %+v", x, want)
	}
	if got := encodeIDX(t, x); !bytes.Equal(got, in) {
		t.Fatalf("WriteIDX gives % x, want % x", got, in)
	}
}

func TestIDXRoundTrip(t *testing.T) {
	for _, dims := range [][]int{{1}, {7}, {3, 28, 28}, {2, 1, 3, 1, 2}, {256, 300}} {
		n := 1
		for _, d := range dims {
			n *= d
		}
		x := &idxFile{Dims: dims, Data: make([]uint8, n)}
		for i := range x.Data {
			x.Data[i] = uint8(i * 7)
		}
		got, err := readIDX(bytes.NewReader(encodeIDX(t, x)))
		if err != nil {
			t.Fatalf("%v: %v", dims, err)
		}
		if !reflect.DeepEqual(got, x) {
			t.Fatalf("%v: round trip changed the data", dims)
		}
	}
}

func TestReadIDXErrors(t *testing.T) {
	valid := encodeIDX(t, &idxFile{Dims: []int{3, 4}, Data: make([]uint8, 12)})
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated: header needs 4 bytes, file has 0"},
		{"short magic", []byte{0, 0, 8}, "truncated: header needs 4 bytes, file has 3"},
		{"zip magic", []byte("PK\x03\x04rest"), "not an IDX file: magic 50 4b 03 04"},
		{"gzip not unpacked", []byte{0x1f, 0x8b, 8, 0, 0}, "not an IDX file"},
		{"int32 type", []byte{0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "unsupported IDX element type 0x0c"},
		{"float type", []byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "unsupported IDX element type 0x0d"},
		{"no dims", []byte{0, 0, 8, 0}, "zero dimensions"},
		{"dims cut", []byte{0, 0, 8, 2, 0, 0, 0, 2, 0, 0}, "truncated: header says 2 dimensions"},
		{"dims missing", []byte{0, 0, 8, 255}, "truncated: header says 255 dimensions"},
		{"zero dim", []byte{0, 0, 8, 2, 0, 0, 0, 5, 0, 0, 0, 0}, "dimension 1 of [5 0] is zero"},
		{"huge dims", []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "describe more than 2147483647 bytes"},
		{"just too big", []byte{0, 0, 8, 2, 0, 1, 0, 0, 0, 0, 0x80, 0}, "[65536 32768] describe more than"},
		{"data cut", valid[:len(valid)-7], "truncated: header says 12 bytes of data, file has 5"},
		{"no data", valid[:12], "truncated: header says 12 bytes of data, file has 0"},
		{"trailing", append(bytes.Clone(valid), 0), "trailing garbage after the 12 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := readIDX(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatalf("accepted: %+v", x)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestReadIDXTruncatedEverywhere(t *testing.T) {
	valid := encodeIDX(t, &idxFile{Dims: []int{2, 3, 4}, Data: make([]uint8, 24)})
	for n := range len(valid) {
		_, err := readIDX(bytes.NewReader(valid[:n]))
		if err == nil || !strings.HasPrefix(err.Error(), "truncated: ") {
			t.Errorf("cut at %d of %d: error %v, want truncated", n, len(valid), err)
		}
	}
}

// A header claiming a gigabyte in front of a few bytes must not cost a gigabyte.
func TestReadIDXLyingHeaderAllocatesLittle(t *testing.T) {
	in := []byte{0, 0, 8, 1, 0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readIDX(bytes.NewReader(in))
	runtime.ReadMemStats(&after)
	if err == nil || err.Error() != "truncated: header says 1073741824 bytes of data, file has 10" {
		t.Fatalf("error %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Fatalf("allocated %d bytes", got)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadIDXPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	if _, err := readIDX(failingReader{boom}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
}

func TestOpenIDX(t *testing.T) {
	x := &idxFile{Dims: []int{4, 2}, Data: []uint8{1, 2, 3, 4, 5, 6, 7, 8}}
	raw := encodeIDX(t, x)
	dir := t.TempDir()
	// The content decides, not the name.
	files := map[string][]byte{
		"raw":        raw,
		"raw.gz":     raw,
		"gzipped":    gzipBytes(t, raw),
		"gzipped.gz": gzipBytes(t, raw),
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := openIDX(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, x) {
			t.Fatalf("%s: got %+v, want %+v", name, got, x)
		}
	}
}

func TestOpenIDXErrors(t *testing.T) {
	raw := encodeIDX(t, &idxFile{Dims: []int{100}, Data: make([]uint8, 100)})
	gz := gzipBytes(t, raw)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-5] ^= 0xff
	for _, tc := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"one byte", []byte{0x1f}, "truncated: header needs 4 bytes, file has 1"},
		{"cut raw", raw[:50], "truncated: header says 100 bytes of data, file has 42"},
		{"cut gzip data", gz[:len(gz)-10], "truncated: "},
		{"cut gzip trailer", gz[:len(gz)-4], "truncated: the file ends in the middle of its compressed stream"},
		{"gzip cut header", []byte{0x1f, 0x8b, 8, 0}, "truncated: the gzip header is cut short"},
		{"gzip bad header", []byte{0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0xff}, "gzip: invalid header"},
		{"gzip bad checksum", badCRC, "gzip: invalid checksum"},
		{"gzip of garbage", gzipBytes(t, []byte("hello")), "not an IDX file"},
	} {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, tc.content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := openIDX(path)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, path+": ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q, want %q and the file name", tc.name, msg, tc.want)
		}
	}
	if _, err := openIDX(filepath.Join(t.TempDir(), "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v", err)
	}
}

func TestWriteIDXErrors(t *testing.T) {
	for _, x := range []*idxFile{
		{},
		{Dims: []int{2, 2}, Data: make([]uint8, 3)},
		{Dims: []int{0}},
		{Dims: []int{-1}, Data: nil},
		{Dims: []int{1 << 16, 1 << 15}},
		{Dims: make([]int, 256)},
	} {
		if err := writeIDX(&bytes.Buffer{}, x); err == nil {
			t.Errorf("WriteIDX accepted dims %v with %d bytes", x.Dims, len(x.Data))
		}
	}
}

// FuzzReadIDX checks that ReadIDX never panics and that whatever it accepts
// is consistent: dimensions positive and matching the data, and writing it
// back gives the input bytes.
func FuzzReadIDX(f *testing.F) {
	valid := encodeIDX(f, &idxFile{Dims: []int{2, 3, 2}, Data: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(valid[:6])
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := readIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 1
		for _, d := range x.Dims {
			if d <= 0 {
				t.Fatalf("dims %v", x.Dims)
			}
			n *= d
		}
		if len(x.Dims) == 0 || n != len(x.Data) {
			t.Fatalf("dims %v with %d bytes", x.Dims, len(x.Data))
		}
		if out := encodeIDX(t, x); !bytes.Equal(out, in) {
			t.Fatalf("accepted % x but writes back % x", in, out)
		}
	})
}
