// Command mksubset writes testdata/mnist-subset: the first 5000 training and
// the first 1000 test samples of MNIST, as the four gzipped IDX files. It
// fetches the full MNIST first if needed. The output is deterministic.
//
// From the repository root:
//
//	go run ./engine/data/internal/mksubset
package main

import (
	"flag"
	"log"
	"os"

	"github.com/batchlab/batchlab/engine/data"
)

func main() {
	src := flag.String("src", data.DefaultDir(), "directory of the full MNIST (fetched there if missing)")
	out := flag.String("out", "testdata/mnist-subset", "directory to write the subset to")
	nTrain := flag.Int("train", 5000, "training samples to keep")
	nTest := flag.Int("test", 1000, "test samples to keep")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("mksubset: ")

	if err := data.FetchMNIST(*src, os.Stderr); err != nil {
		log.Fatal(err)
	}
	train, test, err := data.LoadMNIST(*src)
	if err != nil {
		log.Fatal(err)
	}
	if err := data.SaveMNIST(*out, train.Subset(*nTrain), test.Subset(*nTest)); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d training and %d test samples to %s", min(*nTrain, train.Len()), min(*nTest, test.Len()), *out)
}
