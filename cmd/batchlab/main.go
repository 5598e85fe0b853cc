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
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx := handleSignals(os.Stderr)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "batchlab:", err)
		var s interrupted
		if errors.As(context.Cause(ctx), &s) {
			os.Exit(s.exitCode())
		}
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
		fmt.Fprintf(stderr, "batchlab: %s: finishing the step and saving; %s again stops at once\n", first, first)
		cancel(first)
		<-sigs
		fmt.Fprintln(stderr, "batchlab: stopped at once by a second signal; the last checkpoint written is intact")
		os.Exit(first.exitCode())
	}()
	return ctx
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
		benchCommand(), devicesCommand(), dataCommand(), compareCommand()}
	commands = append(commands, lrFindCommand()) // the LR range test (bench/lrfind)
	for _, c := range commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
	}
	return &cli.App{
		Name:  "batchlab",
		Usage: "how batch size changes what neural-network training costs and learns",
		Description: "batchlab trains an MLP on MNIST or Fashion-MNIST (--dataset) on a CUDA GPU or the CPU and reports, per epoch,\n" +
			"what it learned (loss, accuracy) and what it cost (updates, time, bytes moved).\n" +
			"Get MNIST once with `batchlab data`, then `batchlab train`.",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands:  commands,
		// Usage mistakes get one line, not the whole help page.
		OnUsageError: usageError,
		// A bad command name is an error, not a help page and exit 0. (Not
		// CommandNotFound: it cannot return an error, only exit.)
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("no command %q (see batchlab --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		HideHelpCommand: true,
	}
}

func usageError(c *cli.Context, err error, _ bool) error {
	name := c.App.Name
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return fmt.Errorf("%w (see %s --help)", err, name)
}
