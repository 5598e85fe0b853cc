package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine/device"
)

func devicesCommand() *cli.Command {
	return &cli.Command{
		Name:               "devices",
		Usage:              "list the devices this binary can use, and how it was built",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate, "batchlab devices"),
		Action: func(c *cli.Context) error {
			w := c.App.Writer
			build := "CPU only (built with -tags cpu)"
			if device.CUDACompiled {
				build = "CUDA (gorgonia.org/cu, cuBLAS) and CPU"
			}
			fmt.Fprintf(w, "build: %s\n", build)
			for _, info := range device.Available() {
				fmt.Fprintf(w, "  %s\n", info)
			}
			fmt.Fprintf(w, "default device: %s\n", device.Default())
			return nil
		},
	}
}
