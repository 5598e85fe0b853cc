// Package runlog writes a run's log into a directory as the run goes, and
// reads it back: a manifest (which batchlab, which command line, when,
// where, on which device, with which settings, and how it ended), one line
// per epoch as JSON Lines and as CSV, and optionally one line per training
// step. Every line is written with one write call the moment its epoch
// ends, so a reader (tail -f, a notebook, `batchlab compare`) sees the run
// while it trains, and a killed run leaves every finished epoch behind.
//
// The schema is docs/run-log-schema.md; its version is Version. Keys are
// snake_case and every key is on every line (no omitempty).
package runlog

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/atomicfile"
	"github.com/batchlab/batchlab/engine/buildinfo"
	"github.com/batchlab/batchlab/engine/device"
)

// Schema names the format in every manifest; Version is its version,
// raised when a key changes meaning or goes away (adding keys does not).
const (
	Schema  = "batchlab.run"
	Version = 1
)

// The files of a run directory.
const (
	ManifestFile = "manifest.json"
	EpochsJSONL  = "epochs.jsonl"
	EpochsCSV    = "epochs.csv"
	StepsJSONL   = "steps.jsonl"
	ResultFile   = "result.json" // the command's final result, as its --json prints it
)

// files are every file a Writer may create, the ones Overwrite replaces.
var files = []string{ManifestFile, EpochsJSONL, EpochsCSV, StepsJSONL, ResultFile}

// How a run ended, in Manifest.Status.
const (
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted" // by SIGINT or SIGTERM
)

// Manifest says what a run is. Every key is always present: a value not
// known (yet) is null or empty.
type Manifest struct {
	Schema        string         `json:"schema"`
	SchemaVersion int            `json:"schema_version"`
	Batchlab      buildinfo.Info `json:"batchlab"`
	Command       string         `json:"command"`      // "train", "bench epoch"
	CommandLine   string         `json:"command_line"` // as a shell would take it back
	Args          []string       `json:"args"`         // the arguments after the program's name
	Host          string         `json:"host"`
	StartTime     time.Time      `json:"start_time"`
	EndTime       *time.Time     `json:"end_time"` // null while running
	Status        string         `json:"status"`
	Error         string         `json:"error"`  // why it failed or stopped
	Device        *device.Info   `json:"device"` // null until the device is open
	// Flags are the command's every flag with the value it ran with, from
	// the command line, a --config file or the default, keyed by the
	// flag's name in snake_case; SetFlags are those not left at their default.
	Flags    map[string]any `json:"flags"`
	SetFlags []string       `json:"set_flags"`
	// Config is the training configuration after the engine resolved it
	// (defaults filled in, regime adaptation applied): engine.Config with
	// every key (Full); null for commands that do not train one model.
	Config json.RawMessage `json:"config"`
}

// NewManifest starts the manifest of a run of command with args, now, on
// this host.
func NewManifest(command, commandLine string, args []string) Manifest {
	host, _ := os.Hostname()
	return Manifest{
		Schema: Schema, SchemaVersion: Version, Batchlab: buildinfo.Read(),
		Command: command, CommandLine: commandLine, Args: slices.Clone(args),
		Host: host, StartTime: time.Now().UTC().Truncate(time.Millisecond), Status: StatusRunning,
		Flags: map[string]any{}, SetFlags: []string{},
	}
}

// End records how the run ended: status, and err's message if any.
func (m *Manifest) End(status string, err error) {
	end := time.Now().UTC().Truncate(time.Millisecond)
	m.EndTime, m.Status = &end, status
	if err != nil {
		m.Error = err.Error()
	}
}

// Step is one training step's line in steps.jsonl.
type Step struct {
	Epoch     int     `json:"epoch"`
	Step      int     `json:"step"`       // within the epoch, from 1
	TotalStep int     `json:"total_step"` // since the start of the run, from 1
	Loss      float32 `json:"loss"`       // the batch's mean loss; null where it was not finite
}

// Options are how Create treats the directory.
type Options struct {
	// Overwrite replaces the run log in a directory that holds one (and
	// only its files: anything else there is left alone). Without it a
	// directory that is not empty is refused, so no log is lost.
	Overwrite bool
	// Steps writes steps.jsonl, one line per training step.
	Steps bool
}

// epochColumns are epochs.jsonl's keys and epochs.csv's columns:
// engine.EpochStats without the per-step losses, which steps.jsonl holds.
func epochColumns(s engine.EpochStats) []field { return fieldsOf(s, "step_losses") }

// Writer writes one run's log. Its methods do nothing on a nil Writer, so a
// command logs unconditionally and only --run-dir creates one.
type Writer struct {
	dir      string
	manifest Manifest
	epochs   *os.File
	csvFile  *os.File
	csv      *csv.Writer
	steps    *os.File // nil without Options.Steps
	created  bool     // Create made dir
	logged   bool     // an epoch, step or result is in the log
}

// Create makes dir the log of the run m describes: it refuses a directory
// that is not empty (unless o.Overwrite and it holds a run log), creates
// the files and writes the manifest.
func Create(dir string, m Manifest, o Options) (*Writer, error) {
	created, err := prepare(dir, o.Overwrite)
	if err != nil {
		return nil, err
	}
	w := &Writer{dir: dir, manifest: m, created: created}
	create := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		return f
	}
	w.epochs, w.csvFile = create(EpochsJSONL), create(EpochsCSV)
	if o.Steps {
		w.steps = create(StepsJSONL)
	}
	if err == nil {
		w.csv = csv.NewWriter(w.csvFile)
		err = w.csv.Write(keys(epochColumns(engine.EpochStats{})))
		w.csv.Flush()
		err = errors.Join(err, w.csv.Error(), w.writeManifest())
	}
	if err != nil {
		w.closeFiles()
		return nil, fmt.Errorf("run log %s: %w", dir, err)
	}
	return w, nil
}

// prepare makes sure dir exists and holds no log that Create would
// overwrite without being told to; created says whether it made dir.
func prepare(dir string, overwrite bool) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, os.MkdirAll(dir, 0o777)
	case err != nil:
		return false, fmt.Errorf("run log: %w", err)
	case len(entries) == 0:
		return false, nil
	case !overwrite:
		return false, fmt.Errorf("run log %s is not empty (it holds %s): choose a new directory, or --overwrite to replace the run log in it", dir, entries[0].Name())
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		return false, fmt.Errorf("run log %s is not empty and holds no %s, so it is not a run log that --overwrite may replace: choose a new directory", dir, ManifestFile)
	}
	for _, name := range files {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("run log: %w", err)
		}
	}
	return false, nil
}

// Dir is where the log is written.
func (w *Writer) Dir() string {
	if w == nil {
		return ""
	}
	return w.dir
}

// Manifest rewrites the manifest (atomically: a reader sees the old one or
// the new one) after update changed it, e.g. once the device is open.
func (w *Writer) Manifest(update func(*Manifest)) error {
	if w == nil {
		return nil
	}
	update(&w.manifest)
	return w.writeManifest()
}

func (w *Writer) writeManifest() error {
	return atomicfile.Write(filepath.Join(w.dir, ManifestFile), func(out io.Writer) error {
		return writeIndented(out, w.manifest)
	})
}

// Epoch appends the epoch's line to epochs.jsonl and epochs.csv and, with
// Options.Steps, its steps' lines to steps.jsonl. (The trainer reads a
// step's loss from the device only when its epoch ends, so steps arrive by
// the epoch.)
func (w *Writer) Epoch(s engine.EpochStats) error {
	if w == nil {
		return nil
	}
	fs := epochColumns(s)
	line, err := appendJSON(nil, fs)
	if err != nil {
		return fmt.Errorf("run log: epoch %d: %w", s.Epoch, err)
	}
	cells, err := csvCells(fs)
	if err != nil {
		return fmt.Errorf("run log: epoch %d: %w", s.Epoch, err)
	}
	w.logged = true
	if _, err := w.epochs.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("run log: %w", err)
	}
	w.csv.Write(cells)
	if w.csv.Flush(); w.csv.Error() != nil {
		return fmt.Errorf("run log: %w", w.csv.Error())
	}
	first := s.TotalUpdates - len(s.StepLosses)
	for i, loss := range s.StepLosses {
		if err := w.Step(Step{Epoch: s.Epoch, Step: i + 1, TotalStep: first + i + 1, Loss: loss}); err != nil {
			return err
		}
	}
	return nil
}

// Step appends one line to steps.jsonl; without Options.Steps it does nothing.
func (w *Writer) Step(s Step) error {
	if w == nil || w.steps == nil {
		return nil
	}
	w.logged = true
	line, err := appendJSON(nil, fieldsOf(s))
	if err == nil {
		_, err = w.steps.Write(append(line, '\n'))
	}
	if err != nil {
		return fmt.Errorf("run log: step %d: %w", s.TotalStep, err)
	}
	return nil
}

// Result writes result.json: the command's result, as its --json prints it.
func (w *Writer) Result(v any) error {
	if w == nil {
		return nil
	}
	w.logged = true
	return atomicfile.Write(filepath.Join(w.dir, ResultFile), func(out io.Writer) error {
		return writeIndented(out, v)
	})
}

// Close records in the manifest how the run ended and closes the files.
// A run that failed before it logged anything (a bad setting, data not
// found) leaves no log: its files are removed, and dir if Create made it,
// so that the corrected command can run into the same directory; the
// error went to the user anyway.
func (w *Writer) Close(status string, runErr error) error {
	if w == nil {
		return nil
	}
	if status == StatusFailed && !w.logged {
		err := w.closeFiles()
		for _, name := range files {
			if rmErr := os.Remove(filepath.Join(w.dir, name)); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
				err = errors.Join(err, rmErr)
			}
		}
		if w.created {
			err = errors.Join(err, os.Remove(w.dir))
		}
		return err
	}
	w.manifest.End(status, runErr)
	return errors.Join(w.writeManifest(), w.closeFiles())
}

func (w *Writer) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{w.epochs, w.csvFile, w.steps} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Run is a run log read back.
type Run struct {
	Dir      string
	Manifest Manifest
	Epochs   []engine.EpochStats // a null (non-finite) number reads as NaN
}

// Read reads the run log in dir.
func Read(dir string) (*Run, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("%s: no such directory", dir)
		}
		return nil, fmt.Errorf("%s is not a run log: it has no %s (write one with --run-dir)", dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	r := &Run{Dir: dir}
	if err := json.Unmarshal(b, &r.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	switch m := r.Manifest; {
	case m.Schema != Schema:
		return nil, fmt.Errorf("%s is not a batchlab run manifest (schema %q, want %q)", filepath.Join(dir, ManifestFile), m.Schema, Schema)
	case m.SchemaVersion > Version:
		return nil, fmt.Errorf("%s has schema version %d, newer than this batchlab's %d: use a newer batchlab", filepath.Join(dir, ManifestFile), m.SchemaVersion, Version)
	}
	if r.Epochs, err = readEpochs(filepath.Join(dir, EpochsJSONL)); err != nil {
		return nil, err
	}
	return r, nil
}

// readEpochs reads epochs.jsonl. A last line without its newline is an
// epoch being written as we read, and is left out.
func readEpochs(path string) ([]engine.EpochStats, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a command that logs no epochs
	}
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(b), "\n")
	var epochs []engine.EpochStats
	for i, line := range lines {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		var e engine.EpochStats
		if err := unmarshalNullAsNaN([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		epochs = append(epochs, e)
	}
	return epochs, nil
}

// unmarshalNullAsNaN decodes a line written by appendJSON into v, a
// pointer to a struct, with a null number as NaN (what it was written
// from) rather than encoding/json's zero.
func unmarshalNullAsNaN(line []byte, v any) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return err
	}
	for _, f := range fieldsOfValue(reflect.ValueOf(v).Elem()) {
		if k := f.value.Kind(); string(raw[f.key]) == "null" && (k == reflect.Float32 || k == reflect.Float64) {
			f.value.SetFloat(math.NaN())
		}
	}
	return nil
}
