// Command batchlab trains neural networks on a GPU or the CPU and measures
// how the batch size changes what training costs and what it learns.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"golang.org/x/term"

	"github.com/batchlab/batchlab/engine/buildinfo"
)

func main() {
	ctx := handleSignals(os.Stderr)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "batchlab:", err)
	}
	// A signal's code even where the command had nothing left to report.
	var s interrupted
	if errors.As(context.Cause(ctx), &s) {
		os.Exit(s.exitCode())
	}
	if err != nil {
		os.Exit(1)
	}
}

// handleSignals returns a context that the first SIGINT or SIGTERM cancels:
// the command finishes its step, saves what it can and returns. A second
// signal exits at once, with the same code, for a user who will not wait
// for a long step to end; what is on disk then is the last checkpoint
// written whole (checkpoints are written atomically).
// (signal.NotifyContext would keep catching the signal after the first.)
func handleSignals(stderr io.Writer) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		first := interrupted{<-sigs}
		fmt.Fprintf(stderr, "%sbatchlab: %s: finishing the step and saving; %s again stops at once\n", lineStart(stderr), first, first)
		cancel(first)
		<-sigs
		fmt.Fprintln(stderr, "batchlab: stopped at once by a second signal; the last checkpoint written is intact")
		os.Exit(first.exitCode())
	}()
	return ctx
}

// lineStart is what puts a message on a line of its own on w: on a
// terminal, where a progress bar may be drawn without a newline, a carriage
// return and an erase of that line (the bar redraws below the message).
func lineStart(w io.Writer) string {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "\r\x1b[K"
	}
	return ""
}

// interrupted is the cause of a context cancelled by a signal.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return i.String() }

func (i interrupted) String() string {
	if i.sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// exitCode is the shell's convention for death by a signal: 128 + its number.
func (i interrupted) exitCode() int { return 128 + int(i.sig.(syscall.Signal)) }

func newApp(stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{configurable(logged(trainCommand())), configurable(studyCommand()), configurable(logged(noiseCommand())), configurable(logged(adviseCommand())),
		configurable(gridCommand()), benchCommand(), devicesCommand(), dataCommand(), compareCommand()}
	commands = append(commands, configurable(lrFindCommand())) // the LR range test (bench/lrfind), --config too
	commands = append(commands, completionCommand())
	for _, c := range commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
		quietBoolDefaults(c)
	}
	return &cli.App{
		Name:  "batchlab",
		Usage: "how batch size changes what neural-network training costs and learns",
		Description: "batchlab trains an MLP on MNIST or Fashion-MNIST (--dataset) on a CUDA GPU or the CPU and reports, per epoch,\n" +
			"what it learned (loss, accuracy) and what it cost (updates, time, bytes moved).\n" +
			"Get MNIST once with `batchlab data`, then `batchlab train`; `batchlab help CMD` for a command's flags and\n" +
			"examples; `source <(batchlab completion bash)` (or zsh, fish) completes commands and flags.",
		Version:   buildinfo.Read().String(),
		Writer:    stdout,
		ErrWriter: stderr,
		Commands:  commands,
		// Usage mistakes get one line, not the whole help page.
		OnUsageError: usageError,
		// A bad command name is an error, not a help page and exit 0. (Not
		// CommandNotFound: it cannot return an error, only exit.)
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c, c.App.Commands)
			}
			return cli.ShowAppHelp(c)
		},
		Suggest:              true, // "did you mean" for mistyped flags and help topics
		EnableBashCompletion: true, // see `batchlab completion`
		// Errors, exit codes included (help's "No help topic"), reach main,
		// which prints them and exits; cli would exit from inside Run.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func init() {
	// --version prints the build's one line (buildinfo), not "batchlab version batchlab …".
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintln(c.App.Writer, c.App.Version) }
}

// quietBoolDefaults drops cli's "(default: false)" from c's and its
// subcommands' switches: a switch is off unless given.
func quietBoolDefaults(c *cli.Command) {
	for _, f := range c.Flags {
		if a, ok := f.(*altsrc.BoolFlag); ok { // settable from --config (config.go)
			f = a.BoolFlag
		}
		if b, ok := f.(*cli.BoolFlag); ok && !b.Value {
			b.DisableDefaultText = true
		}
	}
	for _, sub := range c.Subcommands {
		quietBoolDefaults(sub)
	}
}

// usageError is every command's one-line usage error; an undefined flag
// gets cli's suggestion of the nearest defined one.
func usageError(c *cli.Context, err error, _ bool) error {
	name, flags := c.App.Name, c.App.Flags
	if c.Command != nil && c.Command.HelpName != "" {
		name, flags = c.Command.HelpName, c.Command.Flags
	}
	if bad, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok && cli.SuggestFlag != nil {
		if s := cli.SuggestFlag(flags, strings.TrimLeft(bad, "-"), true); s != "" {
			return fmt.Errorf("%w (did you mean %s? see %s --help)", err, s, name)
		}
	}
	return fmt.Errorf("%w (see %s --help)", err, name)
}

// unknownCommand refuses c's first argument, which names none of commands,
// suggesting the nearest that does.
func unknownCommand(c *cli.Context, commands []*cli.Command) error {
	name := c.App.Name
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	msg := fmt.Sprintf("no command %q", c.Args().First())
	if cli.SuggestCommand != nil {
		msg += ": " + cli.SuggestCommand(commands, c.Args().First())
	}
	return fmt.Errorf("%s (see %s --help)", msg, name)
}
