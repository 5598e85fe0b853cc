package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptFilesSayWhatIsWrong is issue 12's case 10: each damaged file
// is named for what is wrong with it, not for a symptom further on.
func TestCorruptFilesSayWhatIsWrong(t *testing.T) {
	pixels := make([]uint8, 5*28*28)
	for i := range pixels {
		pixels[i] = uint8(i * 7)
	}
	images := gzipBytes(t, encodeIDX(t, &idxFile{Dims: []int{5, 28, 28}, Data: pixels}))
	labels := encodeIDX(t, &idxFile{Dims: []int{5}, Data: []uint8{1, 2, 3, 4, 5}})
	flipped := append([]byte(nil), images...)
	for i := len(flipped) / 3; i < len(flipped)/3+8; i++ {
		flipped[i] ^= 0xff // inside the deflate stream, well before the trailer
	}
	for _, tc := range []struct {
		name string
		file []byte
		want idxShape
		says string
	}{
		{"flipped bytes inside the deflate stream", flipped, idxShape{3, "images need 3 dimensions"}, "the compressed data is corrupt"},
		{"text after the gzip stream", append(append([]byte(nil), images...), "hello\n"...), idxShape{3, "images need 3 dimensions"}, "6 bytes of something else after the end of the gzip stream"},
		{"an images file with the labels magic", labels, idxShape{3, "images need 3 dimensions (count, rows, cols)"}, "images need 3 dimensions (count, rows, cols), header has 1"},
		{"raw data with bytes appended", append(append([]byte(nil), labels...), 0), idxShape{1, "labels need 1 dimension"}, "trailing garbage after the 5 bytes"},
	} {
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, tc.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := openShaped(path, tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want %q naming the file", tc.name, err, tc.says)
		}
	}
	path := filepath.Join(t.TempDir(), "ok.gz")
	if err := os.WriteFile(path, images, 0o644); err != nil {
		t.Fatal(err)
	}
	x, sum, err := openShaped(path, idxShape{3, "images"})
	if err != nil || len(x.Data) != len(pixels) || sum.Size != int64(len(images)) || len(sum.SHA256) != 64 {
		t.Errorf("intact file: %v, %+v", err, sum)
	}
}

// TestMNISTShape: the headers alone give the shape Load finds.
func TestMNISTShape(t *testing.T) {
	const dir = "../../testdata/mnist-subset"
	n, nTest, features, classes, err := MNIST.Shape(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != train.Len() || nTest != test.Len() || features != train.Features() || classes != train.Classes {
		t.Errorf("shape %d, %d, %d, %d; loaded %d, %d, %d, %d", n, nTest, features, classes, train.Len(), test.Len(), train.Features(), train.Classes)
	}
	if _, _, _, _, err := MNIST.Shape(t.TempDir()); !errors.Is(err, errNotFound) {
		t.Errorf("an empty directory: %v", err)
	}
}
