package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
		Usage: "reproduce the published findings on batch size on MNIST or Fashion-MNIST and write a report",
		Description: "Runs the experiments of the batch-size study, each under its protocol: (a) a fixed LR at\n" +
			"several batch sizes and (b) linear and sqrt LR scaling with Goyal's warmup and step decay, at\n" +
			"equal epochs; (c) step decay vs increase-batch vs a constant LR; (d) Keskar's small against\n" +
			"large batch (10 % of the data), Adam, both trained to 99 % train accuracy, with two sharpness\n" +
			"measures; (e) Hoffer's regimes (LB with ghost batch norm and as many updates as SB); (f) the\n" +
			"time to a test accuracy by batch size; (g) the gradient noise scale — over several seeds,\n" +
			"interleaved, judged by written rules with 95 % intervals. --plan FILE (JSON or YAML, the keys\n" +
			"of the preset.json a study writes) sets the batch sizes, seeds, rules and experiments.\n" +
			"Each run is saved as it finishes: run the same command again to continue a stopped\n" +
			"study. Writes report.html, results.json, runs.csv and findings.csv into --out.\n\n" +
			"On a cluster, run it as a job array into one shared --out: --shard i/n runs the i-th\n" +
			"of n disjoint shares of the runs; without it, a Slurm array task's SLURM_ARRAY_TASK_ID\n" +
			"(and _MIN, _COUNT) or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with --shards n\n" +
			"choose the share (to rerun task 2 of a Slurm array of 4 alone: sbatch --array=2 and\n" +
			"--shards 4, so the task's ID is the shard). Processes on one --out claim each run before they start it, so no\n" +
			"run is run twice; the last to finish writes the report, and 'study report DIR'\n" +
			"builds one from whatever runs DIR holds.",
		CustomHelpTemplate: withExamples(cli.SubcommandHelpTemplate,
			"batchlab study --quick --device cpu                 # a few minutes, into study-quick",
			"batchlab study --device cuda --out study-full       # the full preset; run it again to continue",
			"batchlab study --shard 0/4 --out /shared/study      # one of four processes sharing a directory",
			"batchlab study report /shared/study"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quick", Usage: "the few-minute version (same as --preset quick)"},
			&cli.StringFlag{Name: "preset", Usage: "study size: " + strings.Join(names, ", "), DefaultText: "full"},
			&cli.StringFlag{Name: "plan", Usage: "read the study's plan (batch sizes, LR rules, seeds, epochs, experiments and their settings) from `FILE`, JSON or YAML with the keys of the preset.json a study writes (which is such a file)"},
			&cli.StringFlag{Name: "out", Usage: "directory for the runs and the report", DefaultText: "study-<preset or plan name>"},
			modelFlag(),
			&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N (cuda is the first GPU in CUDA_VISIBLE_DEVICES, the one a scheduler assigned)", Value: "cpu"},
			&cli.StringFlag{Name: "shard", Usage: "run only the `i/n`-th share of the runs (0 ≤ i < n)"},
			&cli.IntFlag{Name: "shards", Usage: "the number of shards `n` when the index comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's completions), or, for a rerun of some tasks of a Slurm array, from SLURM_ARRAY_TASK_ID (the first array's size)"},
			&cli.DurationFlag{Name: "claim-timeout", Usage: "take over a run whose claim has had no heartbeat for this long (its process on another host is presumed dead; on this host a dead process's claim is taken at once)", Value: study.DefaultClaimTimeout},
			datasetFlag(), dataFlag(),
			cpuProfileFlag(),
		},
		Subcommands: []*cli.Command{studyReportCommand()},
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			p, err := studyPlan(c.Bool("quick"), c.String("preset"), c.String("plan"), presets)
			if err != nil {
				return err
			}
			if c.IsSet("model") {
				var err error
				if p, err = p.WithModel(c.String("model")); err != nil {
					return fmt.Errorf("--model: %w", err)
				}
			}
			name := p.Name
			if c.Duration("claim-timeout") <= 0 {
				return fmt.Errorf("--claim-timeout %s: must be positive", c.Duration("claim-timeout"))
			}
			shard, from, err := studyShard(c.String("shard"), c.Int("shards"), os.Getenv)
			if err != nil {
				return err
			}
			out := c.String("out")
			if out == "" {
				out = "study-" + name
			}
			dataset, dir, err := dataSource(c)
			if err != nil {
				return err
			}
			dev := c.String("device")
			if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok && strings.HasPrefix(dev, "cuda") {
				dev += " (CUDA_VISIBLE_DEVICES=" + v + ")"
			}
			fmt.Fprintf(c.App.ErrWriter, "study %s: %s (%s), device %s, into %s\n", p.Name, shard, from, dev, out)
			prof, err := startProfiling(c, nil)
			if err != nil {
				return err
			}
			defer prof.stop()
			res, err := study.Execute(c.Context, p, study.Options{
				Dir: out, Device: c.String("device"), Dataset: dataset, DataDir: dir, Log: c.App.ErrWriter,
				Shard: shard, ClaimTimeout: c.Duration("claim-timeout"), Command: os.Args,
			})
			if perr := prof.stop(); err == nil {
				err = perr
			}
			if err != nil {
				if c.Context.Err() != nil {
					return fmt.Errorf("study interrupted; finished runs are saved in %s: run the same command again to continue", out)
				}
				return err
			}
			if len(res.Missing) > 0 {
				fmt.Fprintf(c.App.Writer, "this process (%s) is done: %d of %d runs in %s have results; other shards or processes\n"+
					"have the rest, and the last to finish writes the report (or now, partial: batchlab study report %s)\n",
					shard, len(res.Runs), len(res.Runs)+len(res.Missing), out, out)
				return nil
			}
			printFindings(c.App.Writer, res, out)
			return nil
		},
	}
}

// studyPlan is the plan that --quick, --preset and --plan choose; more than
// one of them is an error, none is the full preset.
func studyPlan(quick bool, preset, planFile string, presets map[string]study.Preset) (study.Preset, error) {
	var given []string
	if quick {
		given = append(given, "--quick")
	}
	if preset != "" {
		given = append(given, "--preset "+preset)
	}
	if planFile != "" {
		given = append(given, "--plan "+planFile)
	}
	switch {
	case len(given) > 1:
		return study.Preset{}, fmt.Errorf("%s: give one of --quick, --preset and --plan", strings.Join(given, " and "))
	case planFile != "":
		return study.ReadPlan(planFile)
	case quick:
		preset = "quick"
	case preset == "":
		preset = "full"
	}
	p, ok := presets[preset]
	if !ok {
		names := slices.Sorted(maps.Keys(presets))
		return p, fmt.Errorf("unknown preset %q (want one of %s, or a plan file with --plan)", preset, strings.Join(names, ", "))
	}
	return p, nil
}

func studyReportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "build the report of the study in DIR from the runs it holds (all shards', or some)",
		ArgsUsage: "DIR",
		Description: "Reads DIR/preset.json and every valid DIR/runs/<id>.json and writes the report into DIR.\n" +
			"A partial study's report lists the runs still missing and the findings they leave undecided.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate, "batchlab study report study-quick"),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("study report takes one argument, the study's directory (got %d)", c.NArg())
			}
			dir := c.Args().First()
			res, err := study.Report(dir)
			if err != nil {
				return err
			}
			printFindings(c.App.Writer, res, dir)
			return nil
		},
	}
}

// studyShard chooses this process's shard: --shard, else a Slurm array
// task's index, else a Kubernetes Indexed Job's with --shards, else the
// whole study. It says where the choice came from.
func studyShard(flag string, shards int, getenv func(string) string) (study.Shard, string, error) {
	if flag != "" {
		if shards != 0 {
			return study.Shard{}, "", fmt.Errorf("--shard %s and --shards %d: give one (--shards is for JOB_COMPLETION_INDEX)", flag, shards)
		}
		s, err := study.ParseShard(flag)
		return s, "from --shard", err
	}
	if id := getenv("SLURM_ARRAY_TASK_ID"); id != "" {
		task, err := strconv.Atoi(id)
		if err != nil {
			return study.Shard{}, "", fmt.Errorf("SLURM_ARRAY_TASK_ID=%q: not a whole number", id)
		}
		if shards != 0 {
			// A rerun of some tasks (sbatch --array=2) is an array of its
			// own: its task ID is the shard, --shards the first array's size.
			s, err := study.NewShard(task, shards)
			return s, fmt.Sprintf("from SLURM_ARRAY_TASK_ID=%d and --shards %d", task, shards), err
		}
		count, err1 := strconv.Atoi(getenv("SLURM_ARRAY_TASK_COUNT"))
		first, err2 := strconv.Atoi(getenv("SLURM_ARRAY_TASK_MIN"))
		if err1 != nil || err2 != nil {
			return study.Shard{}, "", fmt.Errorf("SLURM_ARRAY_TASK_ID=%d needs SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN, whole numbers (got %q, %q); or pass --shard i/n",
				task, getenv("SLURM_ARRAY_TASK_COUNT"), getenv("SLURM_ARRAY_TASK_MIN"))
		}
		// The index is the task's offset from the array's first, so 1-4
		// works as well as 0-3; a stepped array (0-6:2) is refused.
		s, err := study.NewShard(task-first, count)
		if err != nil {
			return s, "", fmt.Errorf("Slurm array task %d of %d (from %d): %v; use a contiguous array such as --array=0-%d", task, count, first, err, count-1)
		}
		return s, fmt.Sprintf("from SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_MIN=%d, SLURM_ARRAY_TASK_COUNT=%d", task, first, count), nil
	}
	if idx := getenv("JOB_COMPLETION_INDEX"); idx != "" {
		i, err := strconv.Atoi(idx)
		if err != nil {
			return study.Shard{}, "", fmt.Errorf("JOB_COMPLETION_INDEX=%q: not a whole number", idx)
		}
		if shards == 0 {
			return study.Shard{}, "", fmt.Errorf("JOB_COMPLETION_INDEX=%d is set (a Kubernetes Indexed Job): pass the Job's completions as --shards n", i)
		}
		s, err := study.NewShard(i, shards)
		return s, fmt.Sprintf("from JOB_COMPLETION_INDEX=%d and --shards %d", i, shards), err
	}
	if shards != 0 {
		return study.Shard{}, "", fmt.Errorf("--shards %d needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); elsewhere pass --shard i/n", shards)
	}
	return study.Shard{}, "no shard given, no scheduler index found", nil
}

func printFindings(w io.Writer, res *study.Results, dir string) {
	fmt.Fprintf(w, "batch-size study (%s preset, %s, %d runs, %s)\n\n", res.Preset.Name, res.Dataset.Title(), len(res.Runs), res.Device)
	if len(res.Missing) > 0 {
		fmt.Fprintf(w, "PARTIAL: %d planned runs have no result: %s\nundecided until they do: %s\n\n",
			len(res.Missing), strings.Join(res.Missing, ", "), strings.Join(res.Undecided, "; "))
	}
	for _, f := range res.Findings {
		fmt.Fprintf(w, "%-18s %s (%s)\n%18s %s\n", strings.ToUpper(f.Verdict), f.Claim, f.Source, "", f.Measured)
		for _, c := range f.Caveats {
			fmt.Fprintf(w, "%18s caveat: %s\n", "", c)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.html"))
}
