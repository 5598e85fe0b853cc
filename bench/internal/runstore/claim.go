// Package runstore is what the bench suite's run directories share: claims,
// so that processes sharing a directory (the shards of a job array, or two
// commands started on one --out) never run one run twice (claim.go);
// shards, the disjoint shares of a plan's runs a scheduler's array task
// takes (shard.go); and the jobs of a plan's runs (run.go), each keeping
// one JSON result, <id>.json, read and written here (file.go) and checked
// by the study (bench/study) or the grid (bench/grid) that planned it.
package runstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Claims keep processes that share a run directory (the shards of a job
// array, or two commands started on one --out) from running one run twice.
//
// A claim of run <id> is a file runs/<id>.claim.<g>, created with O_EXCL, so
// of two processes creating the same name exactly one succeeds. It records
// the host and process, and its holder touches it while the run trains (a
// heartbeat). The claim with the highest g is the current one; once it is
// stale (its process is gone, on this host, or it has not been touched for
// the claim timeout, on any host) another process takes the run over by
// creating g+1, again with O_EXCL: of two takers only one wins, and nobody
// ever removes a claim another process may hold. The holder removes its
// claim, and the stale ones below it, after the run's result is written.
// Written by hand: no library does this over a shared directory.

// DefaultClaimTimeout is how long a claim may go untouched before it is
// taken over; a live holder touches it every quarter of that.
const DefaultClaimTimeout = 10 * time.Minute

type claimInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

func (c claimInfo) String() string {
	return fmt.Sprintf("process %d on %s since %s", c.PID, c.Host, c.Started.Format(time.TimeOnly))
}

// Claimer takes claims for one process.
type Claimer struct {
	dir     string // runs/
	host    string
	pid     int
	timeout time.Duration
}

// NewClaimer takes claims in dir (where the results are); a claim untouched
// for timeout (DefaultClaimTimeout when 0) is taken over.
func NewClaimer(dir string, timeout time.Duration) (*Claimer, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("claims need the host name: %w", err)
	}
	if timeout <= 0 {
		timeout = DefaultClaimTimeout
	}
	return &Claimer{dir: dir, host: host, pid: os.Getpid(), timeout: timeout}, nil
}

// Claim is a held claim; Release ends it.
type Claim struct {
	path  string
	stale []string // the claims it took over
	stop  chan struct{}
	done  chan struct{}
}

// Take claims run id. It returns nil and what holds it when a live process
// does.
func (c *Claimer) Take(id string) (*Claim, string, error) {
	for {
		next, holder, err := c.look(id)
		if err != nil || holder != "" {
			return nil, holder, err
		}
		cl, err := c.create(id, next)
		if cl != nil || err != nil {
			return cl, "", err
		}
		// Another process was quicker: look at its claim.
	}
}

// look finds run id's current claim: who holds it if it is live, else the
// generation that would take it.
func (c *Claimer) look(id string) (next int, holder string, err error) {
	gens, err := c.generations(id)
	if err != nil || len(gens) == 0 {
		return 1, "", err
	}
	last := gens[len(gens)-1]
	holder = c.live(c.path(id, last))
	return last + 1, holder, nil
}

// create makes claim generation gen of run id, exclusively: nil if another
// process made it first. The generations below it are stale.
func (c *Claimer) create(id string, gen int) (*Claim, error) {
	path := c.path(id, gen)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claiming run %s: %w", id, err)
	}
	info, _ := json.Marshal(claimInfo{Host: c.host, PID: c.pid, Started: time.Now()})
	_, werr := f.Write(info)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("claiming run %s: %w", id, err)
	}
	cl := &Claim{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	for g := 1; g < gen; g++ {
		cl.stale = append(cl.stale, c.path(id, g))
	}
	go cl.heartbeat(c.timeout / 4)
	return cl, nil
}

func (c *Claimer) path(id string, gen int) string {
	return filepath.Join(c.dir, id+".claim."+strconv.Itoa(gen))
}

// generations lists the g of run id's claim files, ascending.
func (c *Claimer) generations(id string) ([]int, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, err
	}
	var gens []int
	for _, e := range entries {
		if g, err := strconv.Atoi(strings.TrimPrefix(e.Name(), id+".claim.")); err == nil && strings.HasPrefix(e.Name(), id+".claim.") {
			gens = append(gens, g)
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// live says who holds the claim at path; "" if it no longer holds.
func (c *Claimer) live(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "" // released just now
	}
	if age := time.Since(fi.ModTime()); age > c.timeout {
		return ""
	}
	b, err := os.ReadFile(path)
	var info claimInfo
	if err != nil || json.Unmarshal(b, &info) != nil {
		return "a process still writing its claim" // fresh, so being written
	}
	if info.Host == c.host {
		// Our own PID in a claim is an earlier process that had it (a
		// container restarted in place), since we hold no claim we look at.
		if info.PID == c.pid || errors.Is(syscall.Kill(info.PID, 0), syscall.ESRCH) {
			return ""
		}
	}
	return info.String()
}

// heartbeat touches the claim until Release, so a live holder's claim never
// looks older than the timeout.
func (cl *Claim) heartbeat(every time.Duration) {
	defer close(cl.done)
	t := time.NewTicker(max(every, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-cl.stop:
			return
		case now := <-t.C:
			os.Chtimes(cl.path, now, now) // a failed touch only makes the claim look older
		}
	}
}

// Release ends the claim: the stale claims it took over go first, so no
// moment shows one of them as the current claim.
func (cl *Claim) Release() {
	close(cl.stop)
	<-cl.done
	for _, p := range cl.stale {
		os.Remove(p)
	}
	os.Remove(cl.path)
}
