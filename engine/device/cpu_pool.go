package device

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The CPU device splits a large pass into parts and runs them on the
// calling goroutine and on helper goroutines. Go has no ready-made
// fork-join that allocates nothing per call, so this is a small one:
// helpers are started once per process and shared by every CPU device; a
// pass is a task (a pointer to a struct the device keeps, so handing it to
// a helper allocates nothing) cut into a fixed number of parts, and the
// caller and the helpers claim parts until none is left. The caller never
// waits for a helper that has not started: on a loaded machine, where a
// helper may not get a core for milliseconds, it runs the parts itself.
//
// Waiting polls before it blocks: waking a blocked goroutine took tens of
// µs on the reference machine (a VM whose idle vCPU halts), as long as a
// split product of a small batch takes. A helper polls for the next job
// for helperPoll after its last one, so it stays awake through a training
// step, then blocks; OpenBLAS's and OpenMP's threads spin the same way.
// A blocked helper that a job wakes starts on the caller's P, behind the
// caller, until the scheduler moves one of them; meanwhile the caller runs
// the parts itself, so the first passes after a pause may use one core.

// Which goroutine runs a part does not matter: the parts are a function of
// the sizes and of GOMAXPROCS only, never of timing, and every part writes
// its own outputs (a reduction is split across its outputs, column sums by
// column, or sums fixed blocks that are then added in order). So results
// are bit-identical from run to run.

// task is a pass cut into parts: run(part, parts) does part part of parts.
type task interface{ run(part, parts int) }

// passes is a device's state for the passes it splits; a device is used
// by one goroutine at a time, so one pass runs at a time.
type passes struct {
	gen     uint32        // the current pass; only the caller touches it
	claim   atomic.Uint64 // gen<<32 | the next part to claim
	pending atomic.Int64  // parts of the current pass not finished
	done    sync.WaitGroup
}

// job asks a helper to claim parts of pass gen.
type job struct {
	t     task
	parts int
	gen   uint32
	p     *passes
}

var (
	helpersOnce sync.Once
	helperJobs  chan job
	nWorkers    int // the caller and its helpers
)

// startHelpers starts GOMAXPROCS−1 helper goroutines, once per process.
//
// Where the GEMM runs in C (OpenBLAS), it then raises GOMAXPROCS by one.
// A goroutine inside a cgo call holds its P, and when every P is so held
// the runtime's monitor takes them back, and starts a thread to look for
// other work, every 20 µs or so (golang/go#18236): on two cores those
// threads competed with OpenBLAS for the cores, and a product split in two
// ran at 300 instead of 360 GFLOP/s. With one P more than workers the
// monitor leaves them alone: training steps ran 10–25% faster at batches
// 32–512 on the reference machine. The extra P is idle: the device never
// runs more than the workers it started with.
func startHelpers() {
	nWorkers = runtime.GOMAXPROCS(0)
	if gemmInCgo {
		runtime.GOMAXPROCS(nWorkers + 1)
	}
	helperJobs = make(chan job, 64)
	for range nWorkers - 1 {
		go helper()
	}
}

// helperPoll is how long a helper polls for a job before it blocks, and
// the caller for the helpers' parts.
const helperPoll = 200 * time.Microsecond

func helper() {
	for {
		if !poll(func() bool { return len(helperJobs) > 0 }) {
			j := <-helperJobs // nothing came for helperPoll: block
			j.p.work(j.t, j.gen, j.parts)
			continue
		}
		select {
		case j := <-helperJobs:
			j.p.work(j.t, j.gen, j.parts)
		default: // another helper took it
		}
	}
}

// poll reports whether ready became true within helperPoll. It yields the
// processor every 64 polls. Never yielding made training steps 20–30%
// slower on the reference machine: a woken goroutine starts on its waker's
// P, where it waits behind a poller that does not yield. Yielding at every
// poll was slower too: runtime.Gosched takes the scheduler's lock and wakes
// idle Ps' threads, which then compete for the cores.
func poll(ready func() bool) bool {
	var start time.Time
	for i := 0; !ready(); i++ {
		if i%64 < 63 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > helperPoll {
			return false
		}
		runtime.Gosched()
	}
	return true
}

// workers is how many goroutines a pass may be split across: GOMAXPROCS
// when the first pass was split (the device's threads).
func workers() int {
	helpersOnce.Do(startHelpers)
	return nWorkers
}

// parallel runs t in parts parts and returns when all have finished.
func (p *passes) parallel(parts int, t task) {
	if parts <= 1 {
		t.run(0, 1)
		return
	}
	p.gen++
	p.pending.Store(int64(parts))
	p.done.Add(parts)
	p.claim.Store(uint64(p.gen) << 32)
	for range min(parts, workers()) - 1 {
		select {
		case helperJobs <- job{t, parts, p.gen, p}:
		default: // the helpers have enough to do: the caller will claim the parts
		}
	}
	p.work(t, p.gen, parts)
	// Only parts a helper has claimed and is running are left.
	poll(func() bool { return p.pending.Load() == 0 })
	p.done.Wait()
}

// work claims and runs parts of pass gen until none is left. A job that
// arrives after its pass is over claims nothing.
func (p *passes) work(t task, gen uint32, parts int) {
	for {
		c := p.claim.Load()
		part := int(uint32(c))
		if uint32(c>>32) != gen || part >= parts {
			return
		}
		if !p.claim.CompareAndSwap(c, c+1) {
			continue
		}
		t.run(part, parts)
		p.done.Done() // before pending: once pending is 0, Wait returns at once
		p.pending.Add(-1)
	}
}

// partsFor is how many parts a pass over n elements is worth: one per
// minPart elements, at most one per worker.
func partsFor(n, minPart int) int {
	return max(1, min(workers(), n/minPart))
}

// span is part part of parts of [0, n), cut at multiples of align.
func span(n, part, parts, align int) (lo, hi int) {
	units := (n + align - 1) / align
	lo = min(n, units*part/parts*align)
	hi = min(n, units*(part+1)/parts*align)
	return lo, hi
}
