package data

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// fashionSubsetDir holds the first 2000 training and 500 test samples of
// Fashion-MNIST (see its README).
const fashionSubsetDir = "../../testdata/fashion-mnist-subset"

func TestParseName(t *testing.T) {
	for _, n := range []Name{MNIST, FashionMNIST} {
		if got, err := ParseName(string(n)); got != n || err != nil {
			t.Errorf("ParseName(%q) = %q, %v", n, got, err)
		}
	}
	_, err := ParseName("cifar10")
	if want := `unknown dataset "cifar10" (want fashion-mnist | mnist)`; err == nil || err.Error() != want {
		t.Errorf("unknown name: %v, want %s", err, want)
	}
}

func TestLoadFashionMNISTSubset(t *testing.T) {
	train, test, err := FashionMNIST.Load(fashionSubsetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d      *Dataset
		name   string
		n      int
		labels []uint8 // as Zalando's README shows the first images
	}{
		{train, "fashion-mnist-train", 2000, []uint8{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}},
		{test, "fashion-mnist-test", 500, []uint8{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}},
	} {
		d := tc.d
		if d.Name != tc.name || d.Len() != tc.n || d.Rows != 28 || d.Cols != 28 || d.Classes != 10 || len(d.Files) != 2 {
			t.Errorf("%s: %d samples of %d×%d, %d classes, %d files; want %s, %d of 28×28, 10 classes, 2 files",
				d.Name, d.Len(), d.Rows, d.Cols, d.Classes, len(d.Files), tc.name, tc.n)
		}
		if got := d.Labels[:len(tc.labels)]; !bytes.Equal(got, tc.labels) {
			t.Errorf("%s: labels start %v, want %v", d.Name, got, tc.labels)
		}
	}
	n, nTest, features, classes, err := FashionMNIST.Shape(fashionSubsetDir)
	if err != nil || n != 2000 || nTest != 500 || features != 784 || classes != 10 {
		t.Errorf("Shape: %d, %d, %d, %d, %v", n, nTest, features, classes, err)
	}
}

// TestFashionMNISTMissing: missing files say, in one line, how to get them.
func TestFashionMNISTMissing(t *testing.T) {
	dir := t.TempDir()
	_, _, err := FashionMNIST.Load(dir)
	want := "Fashion-MNIST not found in " + dir + " (missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], " +
		"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]): install it with `apt-get install dataset-fashion-mnist`"
	if !errors.Is(err, errNotFound) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "--data DIR") {
		t.Errorf("empty dir: %v\nwant it to start %s", err, want)
	}
	if _, _, _, _, err := FashionMNIST.Shape(dir); !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Errorf("Shape of an empty dir: %v", err)
	}
	// batchlab cannot download it: Fetch only checks, and says so.
	var log bytes.Buffer
	err = FashionMNIST.Fetch(dir, &log)
	if err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") || !strings.Contains(err.Error(), "cannot download Fashion-MNIST") {
		t.Errorf("Fetch into an empty dir: %v", err)
	}
	// The subset is not the full set.
	err = FashionMNIST.Fetch(fashionSubsetDir, &log)
	if err == nil || !strings.Contains(err.Error(), "2000 training and 500 test samples, want 60000 and 10000") {
		t.Errorf("Fetch of the subset: %v", err)
	}
	if log.Len() != 0 {
		t.Errorf("failed checks reported %q", log.String())
	}
}

func TestFashionMNISTDefaultDir(t *testing.T) {
	t.Setenv("BATCHLAB_DATA", "/data/mnist") // MNIST's, not Fashion-MNIST's
	if got := FashionMNIST.DefaultDir(); got != "/usr/share/datasets/fashion-mnist" {
		t.Errorf("DefaultDir: %s", got)
	}
	if got := MNIST.DefaultDir(); got != "/data/mnist" {
		t.Errorf("MNIST's DefaultDir: %s", got)
	}
}

// TestFashionMNISTInstalled: where Debian's package is installed, Fetch
// finds the full set there and the committed subset is its start.
func TestFashionMNISTInstalled(t *testing.T) {
	dir := FashionMNIST.DefaultDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): %v", err)
	}
	var log bytes.Buffer
	if err := FashionMNIST.Fetch(dir, &log); err != nil || log.String() != "Fashion-MNIST ready in "+dir+"\n" {
		t.Fatalf("Fetch: %v, said %q", err, log.String())
	}
	train, test, err := FashionMNIST.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	subTrain, subTest, err := FashionMNIST.Load(fashionSubsetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*Dataset{{train, subTrain}, {test, subTest}} {
		want := p[0].Subset(p[1].Len())
		if !bytes.Equal(p[1].Images, want.Images) || !bytes.Equal(p[1].Labels, want.Labels) {
			t.Errorf("%s: the subset is not the first %d samples of Fashion-MNIST", p[1].Name, p[1].Len())
		}
	}
}
