package data

import (
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

func TestParseStrategy(t *testing.T) {
	names := StrategyNames()
	want := []string{"pageable", "pinned", "pinned-async", "uint8", "pinned,uint8", "pinned-async,uint8", "resident"}
	if !slices.Equal(names, want) {
		t.Errorf("StrategyNames() = %q, want %q", names, want)
	}
	for _, name := range names {
		s, err := ParseStrategy(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseStrategy(%q) = %v, %v", name, s, err)
		}
	}
	for name, want := range map[string]Strategy{
		"":                     {Pageable, device.Float32},
		"uint8,pinned-async":   {PinnedAsync, device.Uint8},
		"pageable,uint8":       {Pageable, device.Uint8},
		"pinned, float32":      {Pinned, device.Float32},
		"resident,uint8":       {Resident, device.Uint8},
		"pinned-async,float32": {PinnedAsync, device.Float32},
	} {
		if s, err := ParseStrategy(name); err != nil || s != want {
			t.Errorf("ParseStrategy(%q) = %v, %v; want %v", name, s, err, want)
		}
	}
	for _, bad := range []string{"fast", "pinned,pageable", "uint8,float32", "resident,float32", "pinned,"} {
		_, err := ParseStrategy(bad)
		if err == nil {
			t.Errorf("ParseStrategy(%q): no error", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "pinned-async or resident") || strings.Contains(msg, "\n") {
			t.Errorf("ParseStrategy(%q): error %q does not list the valid names on one line", bad, msg)
		}
	}
}

// TestNormalize: the host normalization is the device's NormalizeBytes with
// PixelScale and PixelShift, bit for bit, and within an ulp of v/255.
func TestNormalize(t *testing.T) {
	d := device.NewCPU()
	src, _ := d.Alloc(device.Uint8, 256)
	dst, _ := d.Alloc(device.Float32, 256)
	all := make([]uint8, 256)
	for i := range all {
		all[i] = uint8(i)
	}
	if err := device.Upload(d, src, all); err != nil {
		t.Fatal(err)
	}
	d.NormalizeBytes(dst, src, 256, pixelScale, pixelShift)
	got := make([]float32, 256)
	if err := device.Download(d, got, dst); err != nil {
		t.Fatal(err)
	}
	for v := range 256 {
		if h := Normalize(uint8(v)); h != got[v] {
			t.Errorf("Normalize(%d) = %g on the host, %g on the device", v, h, got[v])
		}
		if diff := float64(got[v]) - float64(v)/255; diff > 1e-7 || diff < -1e-7 {
			t.Errorf("Normalize(%d) = %g, want %g", v, got[v], float64(v)/255)
		}
	}
}

// TestLoaderContent is the conformance check of every strategy: each batch
// on the device is what a plain host computation of it gives, and each
// moves the bytes and copies BatchTraffic says, as the device counted them.
func TestLoaderContent(t *testing.T) {
	ds := Random(300, 5, 7, 10, 1)
	const maxRows = 64
	batches := [][]int32{{0}, {299, 0, 299}, Permutation(300, 1, 1)[:31], Permutation(300, 1, 2)[:maxRows], {}}
	for _, s := range Strategies() {
		t.Run(s.String(), func(t *testing.T) {
			d := device.NewCPU()
			l, err := NewLoader(d, ds, maxRows, s)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Strategy() != s {
				t.Errorf("Strategy() = %v", l.Strategy())
			}
			if st := l.(*loader).stats; s.Mode == Resident && st.SetupBytes != int64(len(ds.Images)+4*ds.Len()) {
				t.Errorf("resident setup moved %d bytes", st.SetupBytes)
			}
			for i, idx := range batches {
				before, statsBefore := d.Traffic(), l.(*loader).stats
				if i%2 == 1 { // every other batch announced ahead, as the trainer does
					if err := l.Prefetch(idx); err != nil {
						t.Fatal(err)
					}
				}
				x, labels, err := l.Load(idx)
				if err != nil {
					t.Fatal(err)
				}
				checkBatch(t, d, ds, idx, x, labels)
				bytes, copies := s.BatchTraffic(len(idx), ds.Features())
				moved, st := d.Traffic().Sub(before), l.(*loader).stats
				if moved.HostToDeviceBytes != bytes || moved.HostToDeviceCopies != int64(copies) {
					t.Errorf("batch of %d: the device counted %d bytes in %d copies, want %d in %d",
						len(idx), moved.HostToDeviceBytes, moved.HostToDeviceCopies, bytes, copies)
				}
				if st.Bytes-statsBefore.Bytes != bytes || st.Copies-statsBefore.Copies != int64(copies) || st.Batches != int64(i+1) {
					t.Errorf("batch of %d: Stats %+v after %+v", len(idx), st, statsBefore)
				}
			}
		})
	}
}

func checkBatch(t *testing.T, d device.Device, ds *Dataset, idx []int32, x, labels device.Buffer) {
	t.Helper()
	f := ds.Features()
	gotX := make([]float32, len(idx)*f)
	gotY := make([]int32, len(idx))
	if err := device.Download(d, gotX, x); err != nil {
		t.Fatal(err)
	}
	if err := device.Download(d, gotY, labels); err != nil {
		t.Fatal(err)
	}
	for i, s := range idx {
		for j := range f {
			if want := Normalize(ds.Images[int(s)*f+j]); gotX[i*f+j] != want {
				t.Fatalf("row %d (sample %d) pixel %d: %g, want %g", i, s, j, gotX[i*f+j], want)
			}
		}
		if gotY[i] != int32(ds.Labels[s]) {
			t.Fatalf("row %d (sample %d): label %d, want %d", i, s, gotY[i], ds.Labels[s])
		}
	}
}

// TestPrefetch: pinned-async serves a prefetched batch, replaces one that
// the next Load does not ask for, and keeps the batch in use intact while
// the next one is staged.
func TestPrefetch(t *testing.T) {
	ds := Random(100, 3, 3, 10, 2)
	d := device.NewCPU()
	l, err := NewLoader(d, ds, 8, Strategy{Mode: PinnedAsync})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b, c := []int32{1, 2, 3}, []int32{4, 5}, []int32{6, 7, 8, 9}
	x, y, err := l.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Prefetch(b); err != nil {
		t.Fatal(err)
	}
	checkBatch(t, d, ds, a, x, y)         // staging b left a alone
	if err := l.Prefetch(c); err != nil { // replaces b
		t.Fatal(err)
	}
	checkBatch(t, d, ds, a, x, y)
	before := l.(*loader).stats.Copies
	if x, y, err = l.Load(c); err != nil {
		t.Fatal(err)
	}
	if l.(*loader).stats.Copies != before {
		t.Error("Load of the prefetched batch copied again")
	}
	checkBatch(t, d, ds, c, x, y)
	if err := l.Prefetch(a); err != nil {
		t.Fatal(err)
	}
	if x, y, err = l.Load(b); err != nil { // not what was announced
		t.Fatal(err)
	}
	checkBatch(t, d, ds, b, x, y)
}

func TestLoaderErrors(t *testing.T) {
	ds := Random(10, 2, 2, 10, 3)
	d := device.NewCPU()
	for _, bad := range []Strategy{{Mode: "warp-drive"}, {Mode: Resident, DType: device.Float32}, {DType: device.Int32}} {
		if _, err := NewLoader(d, ds, 4, bad); err == nil || !strings.Contains(err.Error(), "unknown transfer strategy") {
			t.Errorf("bad strategy %+v: %v", bad, err)
		}
	}
	if _, err := NewLoader(d, ds, 0, Strategy{}); err == nil {
		t.Error("maxRows 0: no error")
	}
	for _, s := range Strategies() {
		l, err := NewLoader(d, ds, 4, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Load([]int32{0, 1, 2, 3, 4}); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("%s: oversized batch: %v", s, err)
		}
		if _, _, err := l.Load([]int32{10}); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("%s: index out of range: %v", s, err)
		}
		if err := l.Prefetch([]int32{-1}); s.Mode == PinnedAsync && err == nil {
			t.Errorf("%s: Prefetch of a bad index: no error", s)
		}
		l.Close()
	}
}
