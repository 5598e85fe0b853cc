package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// cpuProfileFlag is on every long command; traceFlag on those whose work
// runs on the one device they open (train, noise, bench), as the trace's
// spans come from that device's events.
func traceFlag() cli.Flag {
	return &cli.StringFlag{Name: "trace", Usage: "write a Chrome trace-event JSON to `FILE`: a span per copy, kernel group and step, from device events (open it in https://ui.perfetto.dev or chrome://tracing)"}
}

func cpuProfileFlag() cli.Flag {
	return &cli.StringFlag{Name: "cpuprofile", Usage: "write a pprof CPU profile of the run to `FILE` (go tool pprof FILE)"}
}

// profiling is what --trace and --cpuprofile started.
type profiling struct {
	tl      *trace.Timeline // nil without --trace
	w       *trace.Writer
	cpu     *os.File
	stopped bool
}

// startProfiling starts --cpuprofile and, on d, --trace; d may be nil for
// a command without --trace.
func startProfiling(c *cli.Context, d device.Device) (*profiling, error) {
	p := &profiling{}
	if path := c.String("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		p.cpu = f
	}
	if path := c.String("trace"); path != "" {
		w, err := trace.Create(path)
		if err == nil {
			p.w = w
			p.tl, err = trace.NewTimeline(d, w, "batchlab "+c.Command.FullName()+" on "+d.Info().String())
		}
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("--trace: %w", err)
		}
	}
	return p, nil
}

// stop writes the profile and closes the trace; later calls do nothing, so
// it can be both deferred and called for its error.
func (p *profiling) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
	}
	if p.w != nil {
		errs = append(errs, p.tl.Flush(), p.w.Close())
	}
	return errors.Join(errs...)
}
