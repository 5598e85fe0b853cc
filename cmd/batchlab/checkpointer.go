package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/checkpoint"
)

// checkpointer writes one run's checkpoints to one path, which it holds
// locked (checkpoint.TakeLock) for as long as it may write there: from the
// start when checkpoints were asked for, so that a path that cannot be
// written is refused before the run and a second run on it is refused at
// all; for a plain run, only once it is interrupted.
type checkpointer struct {
	path    string
	stderr  io.Writer
	tr      *engine.Trainer
	lock    *checkpoint.Lock
	written int   // checkpoints written by this run
	failed  int   // writes that failed
	lastErr error // of the last failed write
	intact  bool  // a whole checkpoint of this run is at path (written, or resumed from)
}

// claim takes the lock, once, and says which stale temporary files of
// killed writes it removed.
func (k *checkpointer) claim() error {
	if k.lock != nil {
		return nil
	}
	l, err := checkpoint.TakeLock(k.path)
	if err != nil {
		return err
	}
	k.lock = l
	if n := len(l.Stale); n > 0 {
		fmt.Fprintf(k.stderr, "batchlab: removed %d temporary file(s) that killed writes of %s left: %s\n", n, k.path, strings.Join(l.Stale, ", "))
	}
	return nil
}

// restore resumes the trainer from the checkpoint at the path.
func (k *checkpointer) restore() error {
	saved, err := checkpoint.Load(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no checkpoint at %s to resume from (--checkpoint names it)", k.path)
	}
	if err != nil {
		return err
	}
	if err := k.tr.Restore(saved); err != nil {
		return fmt.Errorf("%s: %w", k.path, err)
	}
	k.intact = true
	return nil
}

// save writes the trainer's state now.
func (k *checkpointer) save() error {
	if err := k.claim(); err != nil {
		return err
	}
	ck, err := k.tr.Checkpoint()
	if err == nil {
		err = checkpoint.Save(k.path, ck)
	}
	if err != nil {
		k.failed++
		k.lastErr = err
		return err
	}
	k.written++
	k.intact = true
	return nil
}

// saveOrWarn saves; a failure leaves the last good checkpoint in place and
// the run goes on, saying so. A checkpoint refused for divergence says
// nothing: the trainer stops after it with the divergence as its error.
func (k *checkpointer) saveOrWarn() {
	if err := k.save(); err != nil && !errors.Is(err, engine.ErrDiverged) {
		previous := "there is no earlier one"
		if k.intact {
			previous = "the previous one is intact"
		}
		fmt.Fprintf(k.stderr, "batchlab: checkpoint not written (%s): %v\n", previous, err)
	}
}

// allFailed is the error of a run none of whose checkpoint writes succeeded.
func (k *checkpointer) allFailed() error {
	if k.failed == 0 || k.written > 0 {
		return nil
	}
	return fmt.Errorf("the run finished, but none of its %d checkpoint writes to %s succeeded; the last failed with: %v", k.failed, k.path, k.lastErr)
}

// release lets the path go.
func (k *checkpointer) release() error { return k.lock.Release() }

// resumeCommand is the command line that continues an interrupted run,
// quoted for a POSIX shell.
func resumeCommand() string {
	args := []string{"batchlab"}
	resume := false
	for _, a := range os.Args[1:] {
		resume = resume || a == "--resume" || a == "-resume"
		args = append(args, shellQuote(a))
	}
	if !resume {
		args = append(args, "--resume")
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell, as Python's shlex.quote does:
// as it is when it holds only characters no shell treats specially, else
// in single quotes. (Written here: a few lines no dependency of ours has.)
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
