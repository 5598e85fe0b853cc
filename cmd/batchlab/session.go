package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// The plumbing every command that trains or measures shares, written once:
// noArgs refuses stray arguments, openSession opens --device and starts
// --trace and --cpuprofile on it, and progress draws a bar on a terminal.
// Ctrl-C and SIGTERM arrive through c.Context, which main cancels on
// either (signal.NotifyContext).

// noArgs refuses positional arguments: every setting is a flag. Where the
// command has subcommands, the argument is taken for a mistyped one.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 && len(c.Command.Subcommands) > 0 {
		return unknownCommand(c, c.Command.Subcommands)
	}
	if c.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (see %s --help)", c.Command.FullName(), c.Args().First(), c.Command.HelpName)
	}
	return nil
}

// session is a command's open device and the profiling started on it, and
// for the commands that train, the data.
type session struct {
	device      device.Device
	prof        *profiling
	dataset     data.Name
	train, test *data.Dataset
}

// openSession opens --device and, where the command has the flags, starts
// --cpuprofile and --trace on it. close undoes both.
func openSession(c *cli.Context) (*session, error) {
	if c.IsSet("device") && c.String("device") == "" {
		return nil, errors.New("--device is empty (leave it out for the default, " + device.Default() + ")")
	}
	d, err := device.Open(c.String("device"))
	if err != nil {
		return nil, err
	}
	runOf(c).setDevice(d.Info())
	prof, err := startProfiling(c, d)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &session{device: d, prof: prof}, nil
}

// openTrainingSession checks each of cfgs against the data modelFlags point
// at and against the memory budget, opens the session and loads the data.
// The flags are checked before a device opens, and the memory plan, which
// needs only the data's shape (the files' headers), before the data is
// decoded: a run too big for memory is refused at once.
func openTrainingSession(c *cli.Context, cfgs ...engine.Config) (*session, error) {
	name, dir, err := dataSource(c)
	if err != nil {
		return nil, err
	}
	n, nTest, features, classes, err := name.Shape(dir)
	if err != nil {
		return nil, err
	}
	if n, err = trainSamples(c, n, dir); err != nil {
		return nil, err
	}
	for _, cfg := range cfgs {
		if err := cfg.Validate(n); err != nil {
			return nil, err
		}
	}
	s, err := openSession(c)
	if err != nil {
		return nil, err
	}
	shape := engine.Shape{Features: features, Classes: classes, Train: n, Test: nTest}
	for _, cfg := range cfgs {
		if err := engine.CheckMemory(cfg, shape, s.device); err != nil {
			s.close()
			return nil, err
		}
	}
	s.dataset = name
	if s.train, s.test, err = loadData(c, cfgs...); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// stopProfiling writes the profile and the trace, once: a command calls it
// for its error when the work is done, before it prints.
func (s *session) stopProfiling() error { return s.prof.stop() }

// close stops the profiling (if the command did not) and closes the device.
func (s *session) close() error {
	return errors.Join(s.prof.stop(), s.device.Close())
}

// progress is a progress bar on stderr, or nothing where nobody would see
// it (stderr is not a terminal) or --no-progress turned it off.
type progress struct {
	bar      *progressbar.ProgressBar
	nextLoss *time.Time // when showLoss next reads the loss
}

func newProgress(c *cli.Context, total int) progress {
	f, ok := c.App.ErrWriter.(*os.File)
	if c.Bool("no-progress") || !ok || !term.IsTerminal(int(f.Fd())) {
		return progress{}
	}
	return newBar(f, total)
}

// newBar draws a progress bar on w.
func newBar(w io.Writer, total int) progress {
	return progress{progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	), new(time.Time)}
}

// lossEvery is how often showLoss reads the running loss: each read waits
// for the device, so not at every step.
const lossEvery = 500 * time.Millisecond

// showLoss puts the running loss beside label, reading it with loss at most
// every lossEvery; call it before step.
func (p progress) showLoss(label string, loss func() (float64, error)) {
	if p.bar == nil || time.Now().Before(*p.nextLoss) {
		return
	}
	*p.nextLoss = time.Now().Add(lossEvery)
	if l, err := loss(); err == nil {
		p.bar.Describe(fmt.Sprintf("%s loss %.4f", label, l))
	}
}

// step reports step done of total of a pass named label: the first step
// starts the bar afresh (the total may change, as an increase-batch
// schedule does), the last clears it.
func (p progress) step(label string, done, total int) {
	if p.bar == nil {
		return
	}
	if done == 1 {
		p.bar.Reset()
		p.bar.ChangeMax(total)
		p.bar.Describe(label)
	}
	p.bar.Add(1)
	if done == total {
		p.bar.Clear()
	}
}

// set moves the bar to done.
func (p progress) set(done int) {
	if p.bar != nil {
		p.bar.Set(done)
	}
}

// clear removes the bar from the terminal.
func (p progress) clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}
