package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/runlog"
)

// logged gives a long command --run-dir: its action then runs with a run
// (runOf) whose manifest is written into the directory before the work
// starts, and completed with how it ended when the action returns.
func logged(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags,
		&cli.StringFlag{Name: "run-dir", Usage: "log the run into `DIR` as it goes: manifest.json, epochs.jsonl and epochs.csv (see docs/run-log-schema.md); DIR must be new or empty"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the run log already in --run-dir (its files only)"},
		&cli.BoolFlag{Name: "log-steps", Usage: "also log every training step's loss into --run-dir/steps.jsonl"},
	)
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		r, err := startRun(c)
		if err != nil {
			return err
		}
		c.Context = context.WithValue(c.Context, runKey{}, r)
		err = action(c)
		closeErr := r.close(c, err)
		if err == nil {
			return closeErr
		}
		if closeErr != nil {
			fmt.Fprintf(c.App.ErrWriter, "batchlab: %v\n", closeErr)
		}
		return err
	}
	return cmd
}

type runKey struct{}

// runLog is a command's manifest and, with --run-dir, the log it goes into.
type runLog struct {
	manifest runlog.Manifest
	w        *runlog.Writer // nil without --run-dir
	err      error          // the first error of a hook's write, reported at the end
}

// runOf is the run of a logged command; nil otherwise, on which every
// method does nothing.
func runOf(c *cli.Context) *runLog {
	r, _ := c.Context.Value(runKey{}).(*runLog)
	return r
}

func startRun(c *cli.Context) (*runLog, error) {
	args := os.Args[1:]
	quoted := []string{"batchlab"}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	r := &runLog{manifest: runlog.NewManifest(c.Command.FullName(), strings.Join(quoted, " "), args)}
	r.manifest.Flags, r.manifest.SetFlags = flagValues(c)
	dir := c.String("run-dir")
	if dir == "" {
		for _, f := range []string{"overwrite", "log-steps"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s needs --run-dir", f)
			}
		}
		return r, nil
	}
	var err error
	r.w, err = runlog.Create(dir, r.manifest, runlog.Options{Overwrite: c.Bool("overwrite"), Steps: c.Bool("log-steps")})
	return r, err
}

// flagValues are the command's flags with the values the command runs
// with, keyed in snake_case, and the names of those set (on the command
// line or by --config).
func flagValues(c *cli.Context) (map[string]any, []string) {
	values, set := map[string]any{}, []string{}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name == "help" {
			continue
		}
		key := strings.ReplaceAll(name, "-", "_")
		switch v := c.Value(name).(type) {
		case cli.IntSlice:
			values[key] = nonNil(v.Value())
		case cli.Int64Slice:
			values[key] = nonNil(v.Value())
		case cli.Float64Slice:
			values[key] = nonNil(v.Value())
		case cli.StringSlice:
			values[key] = nonNil(v.Value())
		case time.Duration:
			values[key] = v.String()
		default:
			values[key] = v
		}
		if c.IsSet(name) {
			set = append(set, key)
		}
	}
	slices.Sort(set)
	return values, set
}

// nonNil is s, or an empty slice for nil: a list flag left empty is [] in
// the manifest, not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// status is how a command that returned err ended.
func status(c *cli.Context, err error) string {
	switch {
	case err == nil:
		return runlog.StatusDone
	case c.Context.Err() != nil:
		return runlog.StatusInterrupted
	}
	return runlog.StatusFailed
}

func (r *runLog) close(c *cli.Context, err error) error {
	if r.w == nil {
		return nil
	}
	return errors.Join(r.err, r.w.Close(status(c, err), err))
}

// keep remembers the first error of a write that a hook cannot return.
func (r *runLog) keep(err error) {
	if r.err == nil {
		r.err = err
	}
}

// setDevice records the device the command opened.
func (r *runLog) setDevice(info device.Info) {
	if r == nil {
		return
	}
	r.manifest.Device = &info
	r.keep(r.w.Manifest(func(m *runlog.Manifest) { m.Device = &info }))
}

// setConfig records the training configuration as the engine resolved it.
func (r *runLog) setConfig(cfg engine.Config) {
	if r == nil {
		return
	}
	full, err := runlog.Full(cfg)
	if err != nil {
		r.keep(err)
		return
	}
	r.manifest.Config = full
	r.keep(r.w.Manifest(func(m *runlog.Manifest) { m.Config = full }))
}

// epoch logs an epoch's line.
func (r *runLog) epoch(s engine.EpochStats) {
	if r != nil {
		r.keep(r.w.Epoch(s))
	}
}

// result saves the command's result, as its --json prints it.
func (r *runLog) result(v any) {
	if r != nil {
		r.keep(r.w.Result(v))
	}
}

// manifestAt is the manifest as it will read once the command returns err,
// for --json, which prints it before the run log is closed.
func (r *runLog) manifestAt(c *cli.Context, err error) *runlog.Manifest {
	if r == nil {
		return nil
	}
	m := r.manifest
	m.End(status(c, err), err)
	return &m
}
