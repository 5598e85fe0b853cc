package runstore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadPID is the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeClaim(t *testing.T, path, body string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// TestClaims: a live claim is left alone, a stale one (a dead process on
// this host, or one untouched past the timeout on another) is taken over,
// and release removes both.
func TestClaims(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	me := &Claimer{dir: dir, host: host, pid: os.Getpid(), timeout: time.Minute}
	claimPath := func(g string) string { return filepath.Join(dir, "r.claim."+g) }
	for _, tc := range []struct {
		name, body string
		age        time.Duration
		live       bool
	}{
		{"live process here", `{"host":"` + host + `","pid":` + strconv.Itoa(os.Getppid()) + `}`, 0, true},
		{"dead process here", `{"host":"` + host + `","pid":` + strconv.Itoa(deadPID(t)) + `}`, 0, false},
		{"fresh, another host", `{"host":"elsewhere","pid":1}`, 0, true},
		{"untouched, another host", `{"host":"elsewhere","pid":1}`, 2 * time.Minute, false},
		{"still being written", ``, 0, true},
	} {
		writeClaim(t, claimPath("1"), tc.body, tc.age)
		cl, holder, err := me.Take("r")
		switch {
		case err != nil:
			t.Fatalf("%s: %v", tc.name, err)
		case tc.live && cl != nil:
			t.Errorf("%s: taken over", tc.name)
		case tc.live && holder == "":
			t.Errorf("%s: left alone but no holder named", tc.name)
		case !tc.live && cl == nil:
			t.Errorf("%s: not taken over (held by %s)", tc.name, holder)
		case !tc.live:
			if cl.path != claimPath("2") {
				t.Errorf("%s: took over as %s", tc.name, cl.path)
			}
			cl.Release()
			if left, _ := filepath.Glob(claimPath("*")); len(left) != 0 {
				t.Errorf("%s: release left %v", tc.name, left)
			}
		}
		os.Remove(claimPath("1"))
	}
}

// TestClaimRace: two processes that both found the same stale claim both
// try to take it over: exactly one wins; then many racing through take at
// once, only one holds the claim.
func TestClaimRace(t *testing.T) {
	dir := t.TempDir()
	writeClaim(t, filepath.Join(dir, "r.claim.1"), `{"host":"elsewhere","pid":1}`, time.Hour)
	a := &Claimer{dir: dir, host: "a", pid: 1, timeout: time.Minute}
	b := &Claimer{dir: dir, host: "b", pid: 2, timeout: time.Minute}
	nextA, holderA, errA := a.look("r")
	nextB, holderB, errB := b.look("r")
	if nextA != 2 || nextB != 2 || holderA != "" || holderB != "" || errA != nil || errB != nil {
		t.Fatalf("look: %d %q %v, %d %q %v", nextA, holderA, errA, nextB, holderB, errB)
	}
	clA, errA := a.create("r", nextA)
	clB, errB := b.create("r", nextB)
	if clA == nil || clB != nil || errA != nil || errB != nil {
		t.Fatalf("both took generation 2: %v %v, %v %v", clA, errA, clB, errB)
	}
	clA.Release()

	writeClaim(t, filepath.Join(dir, "r.claim.1"), `{"host":"elsewhere","pid":1}`, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*Claim
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Claimer{dir: dir, host: "racer" + strconv.Itoa(i), pid: 1000 + i, timeout: time.Minute}
			cl, _, err := c.Take("r")
			if err != nil {
				t.Error(err)
			}
			if cl != nil {
				mu.Lock()
				won = append(won, cl)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d racers took the claim, want 1", len(won))
	}
	won[0].Release()
}

// TestHeartbeat: a held claim stays fresh past the timeout.
func TestHeartbeat(t *testing.T) {
	dir := t.TempDir()
	// A timeout of a second: the heartbeat (every quarter of it) must stall
	// for three quarters of a second to fail this, which a loaded CI
	// machine under the race detector does not.
	c := &Claimer{dir: dir, host: "a", pid: 1, timeout: time.Second}
	cl, _, err := c.Take("r")
	if err != nil || cl == nil {
		t.Fatal(err)
	}
	defer cl.Release()
	time.Sleep(2500 * time.Millisecond)
	other := &Claimer{dir: dir, host: "b", pid: 2, timeout: time.Second}
	if got, holder, _ := other.Take("r"); got != nil || !strings.Contains(holder, "process 1 on a") {
		t.Fatalf("a claim with a heartbeat was taken over (holder %q)", holder)
	}
}
