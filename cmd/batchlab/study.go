package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/study"
)

func studyCommand() *cli.Command {
	presets := study.Presets()
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return &cli.Command{
		Name:  "study",
		Usage: "reproduce the published findings on batch size on MNIST and write a report",
		Description: "Runs the experiments of the batch-size study: (a) a fixed LR at several batch sizes;\n" +
			"(b) linear and sqrt LR scaling with warmup; (c) step decay vs increase-batch; (d) the\n" +
			"generalization gap and sharpness; (e) large batch with ghost batch norm and regime\n" +
			"adaptation; (f) cost per epoch; (g) the gradient noise scale — over several seeds.\n" +
			"Each run is saved as it finishes: run the same command again to continue a stopped\n" +
			"study. Writes report.html, results.json, runs.csv and findings.csv into --out.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "the few-minute version (same as --preset quick)"},
			&cli.StringFlag{Name: "preset", Usage: "study size: " + strings.Join(names, ", "), Value: "full"},
			&cli.StringFlag{Name: "out", Usage: "directory for the runs and the report (default: study-<preset>)"},
			&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N", Value: "cpu"},
			datasetFlag(), dataFlag(),
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			name := c.String("preset")
			if c.Bool("quick") {
				name = "quick"
			}
			p, ok := presets[name]
			if !ok {
				return fmt.Errorf("unknown preset %q (want one of %s)", name, strings.Join(names, ", "))
			}
			out := c.String("out")
			if out == "" {
				out = "study-" + name
			}
			dataset, dir, err := dataSource(c)
			if err != nil {
				return err
			}
			res, err := study.Execute(c.Context, p, study.Options{
				Dir: out, Device: c.String("device"), Dataset: dataset, DataDir: dir, Log: c.App.ErrWriter,
			})
			if err != nil {
				if c.Context.Err() != nil {
					return fmt.Errorf("study interrupted; finished runs are saved in %s: run the same command again to continue", out)
				}
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "batch-size study (%s preset, %s, %d runs, %s)\n\n", p.Name, res.Dataset.Title(), len(res.Runs), res.Device)
			for _, f := range res.Findings {
				fmt.Fprintf(w, "%-18s %s (%s)\n%18s %s\n\n", strings.ToUpper(f.Verdict), f.Claim, f.Source, "", f.Measured)
			}
			fmt.Fprintf(w, "report: %s\n", filepath.Join(out, "report.html"))
			return nil
		},
	}
}
