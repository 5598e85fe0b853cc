// Package bench is the bench suite: the experiments that measure what the
// batch size changes, each a package named for the question it answers —
//
//   - bench/transfer: what moving a batch to the device costs, by batch
//     size and transfer strategy, and the fit α + bytes/β;
//   - bench/epoch: what an epoch of training costs, split into transfer,
//     forward+backward and update;
//   - bench/study: which published findings on batch size hold here, with
//     a report of plots, tables and verdicts;
//   - bench/advise: which batch size and learning rate to use for this
//     model on this machine.
//
// This package holds only what ties them together: how a result names the
// device it came from, and the training step's benchmark beside Gorgonia
// (step_test.go). bench/internal/plotkit is the plotting kit they share.
package bench

import (
	"fmt"

	"github.com/batchlab/batchlab/engine/device"
)

// DeviceLabel names the device a result came from; on the CPU it says that
// a "transfer" there is a copy within host memory, so that nobody takes a
// CPU number for a PCIe one.
func DeviceLabel(i device.Info) string {
	if i.Kind == "cpu" {
		return fmt.Sprintf("CPU device, %s (transfers are host memory copies)", i)
	}
	return i.String()
}

// PlotLabel is a shorter DeviceLabel, to fit under a plot's title.
func PlotLabel(i device.Info) string {
	if i.Kind == "cpu" {
		return fmt.Sprintf("CPU device (%s, %d threads): transfers are host memory copies", i.Name, i.Threads)
	}
	return fmt.Sprintf("%s:%d %s", i.Kind, i.Ordinal, i.Name)
}
