// Command samenumbers checks that two study directories' reports hold the
// same numbers, wall times left out (study.SameNumbers): CI compares a
// study run as a Slurm job array with one run as a single process.
//
//	go run ./bench/study/internal/samenumbers DIR_A DIR_B
package main

import (
	"fmt"
	"os"

	"github.com/batchlab/batchlab/bench/study"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: samenumbers DIR_A DIR_B")
		os.Exit(2)
	}
	a, err := study.ReadResults(os.Args[1])
	if err == nil {
		var b *study.Results
		if b, err = study.ReadResults(os.Args[2]); err == nil {
			diffs := study.SameNumbers(a, b)
			for _, d := range diffs {
				fmt.Println(d)
			}
			if len(diffs) > 0 {
				fmt.Printf("%d differences between %s and %s\n", len(diffs), os.Args[1], os.Args[2])
				os.Exit(1)
			}
			fmt.Printf("same numbers: %d runs, %d findings\n", len(a.Runs), len(a.Findings))
			return
		}
	}
	fmt.Fprintln(os.Stderr, "samenumbers:", err)
	os.Exit(1)
}
