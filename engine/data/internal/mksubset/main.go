// Command mksubset writes a small subset of a dataset for the tests: by
// default testdata/mnist-subset, the first 5000 training and the first 1000
// test samples of MNIST, as the four gzipped IDX files. It fetches the full
// dataset first where batchlab can (MNIST), or else checks that --src holds
// it. The output is deterministic.
//
// From the repository root:
//
//	go run -tags cpu ./engine/data/internal/mksubset
//	go run -tags cpu ./engine/data/internal/mksubset -dataset fashion-mnist \
//		-out testdata/fashion-mnist-subset -train 2000 -test 500
package main

import (
	"flag"
	"log"
	"os"

	"github.com/batchlab/batchlab/engine/data"
)

func main() {
	dataset := flag.String("dataset", string(data.MNIST), "dataset: "+data.NameList())
	src := flag.String("src", "", "directory of the full dataset (default: where batchlab looks for it)")
	out := flag.String("out", "testdata/mnist-subset", "directory to write the subset to")
	nTrain := flag.Int("train", 5000, "training samples to keep")
	nTest := flag.Int("test", 1000, "test samples to keep")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("mksubset: ")

	name, err := data.ParseName(*dataset)
	if err != nil {
		log.Fatal(err)
	}
	if *src == "" {
		*src = name.DefaultDir()
	}
	if err := name.Fetch(*src, os.Stderr); err != nil {
		log.Fatal(err)
	}
	train, test, err := name.Load(*src)
	if err != nil {
		log.Fatal(err)
	}
	if err := data.SaveMNIST(*out, train.Subset(*nTrain), test.Subset(*nTest)); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d training and %d test samples of %s to %s", min(*nTrain, train.Len()), min(*nTest, test.Len()), name.Title(), *out)
}
