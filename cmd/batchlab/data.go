package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine/data"
)

// dataFlag is --data: no default of its own, since where a dataset is found
// unless told depends on --dataset (dataDir).
func dataFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:  "data",
		Usage: "directory holding the dataset's four IDX files",
		DefaultText: "mnist: $BATCHLAB_DATA or ~/.cache/batchlab/mnist; fashion-mnist: where Debian's dataset-fashion-mnist installs it, " +
			data.FashionMNIST.DefaultDir(),
	}
}

// datasetFlag is --dataset, beside --data on every command that reads data.
func datasetFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "dataset", Usage: "dataset: " + data.NameList(), Value: string(data.MNIST)}
}

// dataFlags are --dataset and --data, which every command that reads data takes.
func dataFlags() []cli.Flag { return []cli.Flag{datasetFlag(), dataFlag()} }

// dataSource reads --dataset and --data: the dataset and the directory to
// read it from.
func dataSource(c *cli.Context) (data.Name, string, error) {
	name, err := data.ParseName(c.String("dataset"))
	if err != nil {
		return "", "", fmt.Errorf("--dataset: %w", err)
	}
	if c.IsSet("data") {
		return name, c.String("data"), nil
	}
	return name, name.DefaultDir(), nil
}

func dataCommand() *cli.Command {
	return &cli.Command{
		Name: "data",
		Usage: "download MNIST (through the Go module proxy; needs the go command) into --data, " +
			"or with --dataset fashion-mnist check that it is installed (batchlab cannot download it)",
		Flags: dataFlags(),
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab data                          # MNIST into $BATCHLAB_DATA or the default directory",
			"batchlab data --data ./mnist",
			"batchlab data --dataset fashion-mnist  # is Debian's dataset-fashion-mnist installed?"),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			name, dir, err := dataSource(c)
			if err != nil {
				return err
			}
			return name.Fetch(dir, c.App.ErrWriter)
		},
	}
}
