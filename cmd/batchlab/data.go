package main

import (
	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine/data"
)

func dataFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "data",
		Usage:   "directory holding the MNIST IDX files",
		Value:   data.DefaultDir(),
		EnvVars: []string{"BATCHLAB_DATA"},
	}
}

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:  "data",
		Usage: "download MNIST (through the Go module proxy; needs the go command) into --data",
		Flags: []cli.Flag{dataFlag()},
		Action: func(c *cli.Context) error {
			return data.FetchMNIST(c.String("data"), c.App.ErrWriter)
		},
	}
}
