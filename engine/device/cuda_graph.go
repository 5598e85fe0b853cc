//go:build !cpu

package device

// #include <cuda.h>
import "C"

import (
	"errors"
	"fmt"

	"gorgonia.org/cu"
)

// cudaGraph is a captured and instantiated CUDA graph with the device int
// its per-step slots are offset by.
type cudaGraph struct {
	dev   *CUDA
	exec  C.CUgraphExec
	base  cu.DevicePtr // int32, set before each replay
	slots []slotUse
}

func (*cudaGraph) deviceGraph() {}

// destroy releases the graph; it runs on the context's thread.
func (g *cudaGraph) destroy() error {
	var errs []error
	if g.exec != nil {
		errs = append(errs, graphExecDestroy(g.exec))
	}
	if g.base != 0 {
		errs = append(errs, call("cuMemFree", cu.MemFree(g.base)))
	}
	g.exec, g.base = nil, 0
	return errors.Join(errs...)
}

// Capture records what fn issues on the compute stream (stream capture)
// and instantiates it as a graph.
func (d *CUDA) Capture(fn func()) (Graph, error) {
	if d.failed() {
		return nil, d.err
	}
	if d.ctx == nil {
		return nil, fmt.Errorf("cuda: Capture: %w", errClosed)
	}
	if d.capture != nil {
		return nil, errors.New("cuda: Capture: already capturing (graphs do not nest)")
	}
	g := &cudaGraph{dev: d}
	err := d.do(func() (err error) {
		if g.base, err = cu.MemAlloc(4); err != nil {
			return call("cuMemAlloc", err)
		}
		return beginCapture(d.compute)
	})
	if err != nil {
		d.do(g.destroy)
		return nil, fmt.Errorf("cuda: Capture: %w", err)
	}
	d.capture = &capture{base: uint64(g.base)}
	fn()
	g.slots = d.capture.slots
	d.capture = nil
	// End the capture even after an error inside fn, so that the stream
	// leaves capture mode.
	err = d.do(func() (err error) {
		g.exec, err = endCapture(d.compute)
		return err
	})
	if err == nil {
		err = d.err
	}
	if err != nil {
		d.do(g.destroy)
		d.fail(fmt.Errorf("cuda: Capture: %w", err))
		return nil, d.err
	}
	d.graphs = append(d.graphs, g)
	return g, nil
}

// Launch sets the graph's slot base, then replays it, both on the compute
// stream.
func (d *CUDA) Launch(g Graph, base int) {
	if d.failed() {
		return
	}
	cg, ok := g.(*cudaGraph)
	if !ok || cg.dev != d || cg.exec == nil {
		d.fail(fmt.Errorf("Launch: graph %T does not belong to this CUDA device", g))
		return
	}
	if d.notCapturing("Launch") != nil {
		return
	}
	if err := checkReplay(cg.slots, base); err != nil {
		d.fail(err)
		return
	}
	d.run("Launch", func() error {
		if err := cu.MemsetD32Async(cg.base, uint(base), 1, d.compute); err != nil {
			return call("cuMemsetD32Async", err)
		}
		return graphLaunch(cg.exec, d.compute)
	})
}
