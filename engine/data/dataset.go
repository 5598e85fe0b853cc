package data

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Name names a dataset batchlab knows: both are 28×28 grey images of ten
// classes in the same four IDX files, so only where they come from differs.
type Name string

const (
	MNIST        Name = "mnist"
	FashionMNIST Name = "fashion-mnist"
)

// source is what batchlab knows of a dataset beyond its files' format.
type source struct {
	title      string        // as output names it
	defaultDir func() string // where it is looked for without --data
	howToGet   string        // the one line that says how to get its files
}

// fashionDir is where Debian's dataset-fashion-mnist package installs the
// four gzipped IDX files.
const fashionDir = "/usr/share/datasets/fashion-mnist"

var sources = map[Name]source{
	MNIST: {
		title:      "MNIST",
		defaultDir: DefaultDir,
		howToGet:   "run `make data` or `batchlab data`",
	},
	FashionMNIST: {
		title:      "Fashion-MNIST",
		defaultDir: func() string { return fashionDir },
		howToGet:   "install it with `apt-get install dataset-fashion-mnist` (Debian; it puts the files in " + fashionDir + ") or pass --data DIR holding the four IDX files",
	},
}

// Names lists the known datasets, sorted.
func Names() []Name {
	var ns []Name
	for n := range sources {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// NameList is Names joined for a usage line or an error: "a | b".
func NameList() string {
	var s []string
	for _, n := range Names() {
		s = append(s, string(n))
	}
	return strings.Join(s, " | ")
}

// ParseName reads a dataset's name as a flag gives it.
func ParseName(s string) (Name, error) {
	if _, ok := sources[Name(s)]; !ok {
		return "", fmt.Errorf("unknown dataset %q (want %s)", s, NameList())
	}
	return Name(s), nil
}

// Title is the dataset's name as people write it ("Fashion-MNIST").
func (n Name) Title() string { return sources[n].title }

// DefaultDir is where the dataset is looked for unless --data says otherwise.
func (n Name) DefaultDir() string { return sources[n].defaultDir() }

// Fetch puts the full dataset into dir where batchlab can download it
// (MNIST), or checks that dir holds it and says how to get it where it
// cannot (Fashion-MNIST comes from a system package).
func (n Name) Fetch(dir string, progress io.Writer) error {
	if n == MNIST {
		return FetchMNIST(dir, progress)
	}
	if err := checkFull(n, dir); err != nil {
		return fmt.Errorf("%w (batchlab cannot download %s itself)", err, n.Title())
	}
	if progress != nil {
		fmt.Fprintf(progress, "%s ready in %s\n", n.Title(), dir)
	}
	return nil
}
