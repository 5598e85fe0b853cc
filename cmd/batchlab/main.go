// Command batchlab trains neural networks on a GPU or the CPU and measures
// how the batch size changes what training costs and what it learns.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "batchlab:", err)
		os.Exit(1)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{trainCommand(), studyCommand(), noiseCommand(), adviseCommand(), benchCommand(), devicesCommand(), dataCommand()}
	for _, c := range commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
	}
	return &cli.App{
		Name:  "batchlab",
		Usage: "how batch size changes what neural-network training costs and learns",
		Description: "batchlab trains an MLP on MNIST on a CUDA GPU or the CPU and reports, per epoch,\n" +
			"what it learned (loss, accuracy) and what it cost (updates, time, bytes moved).\n" +
			"Get the data once with `batchlab data`, then `batchlab train`.",
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
