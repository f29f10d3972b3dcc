package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/pipectl/pipectl/internal/atomicfile"
)

// Owner identifies the process that holds a lock and the run it does.
type Owner struct {
	PID int `json:"pid"`
	// ProcessStart tells a live owner from another process that reuses its
	// PID; empty where the platform does not say.
	ProcessStart string    `json:"process_start,omitempty"`
	Host         string    `json:"host"`
	RunID        string    `json:"run_id"`
	Since        time.Time `json:"since"`
}

// Self returns the owner for this process doing runID.
func Self(runID string, since time.Time) Owner {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return Owner{PID: pid, ProcessStart: processStart(pid), Host: host, RunID: runID, Since: since.UTC()}
}

// Alive reports whether the owner process still runs. An owner on another
// host cannot be checked and counts as alive.
func (o Owner) Alive() bool {
	if host, _ := os.Hostname(); o.Host != "" && o.Host != host {
		return true
	}
	if o.PID <= 0 || !pidAlive(o.PID) {
		return false
	}
	if o.ProcessStart == "" {
		return true
	}
	start := processStart(o.PID)
	return start == "" || start == o.ProcessStart
}

// BusyError says a lock is held by a live owner.
type BusyError struct {
	Name  string
	Owner Owner
}

func (e *BusyError) Error() string {
	o := e.Owner
	s := fmt.Sprintf("%s is already running", e.Name)
	if o.RunID != "" {
		s += fmt.Sprintf(" as run %s", o.RunID)
	}
	if o.PID > 0 {
		s += fmt.Sprintf(" (PID %d", o.PID)
		if !o.Since.IsZero() {
			s += ", since " + o.Since.Format(time.RFC3339)
		}
		s += ")"
	}
	return s
}

// ErrBusy matches every *BusyError with errors.Is.
var ErrBusy = errors.New("lock busy")

func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Options change how Acquire waits.
type Options struct {
	// Wait makes Acquire wait until the lock is free (or ctx ends) instead
	// of failing with a *BusyError.
	Wait bool
	// Poll is how often a waiting Acquire retries (default 200ms).
	Poll time.Duration
	// OnWait, when set, is called once when Acquire starts to wait.
	OnWait func(Owner)
}

// Lock is a held lock.
type Lock struct {
	name      string
	ownerPath string
	fl        *flock.Flock
}

// Acquire takes the lock name in dir for owner. When the lock is free but
// an earlier owner died holding it, that owner is returned as stale.
func Acquire(ctx context.Context, dir, name string, owner Owner, opts Options) (*Lock, *Owner, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("lock %s: %w", name, err)
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	l := &Lock{
		name:      name,
		ownerPath: filepath.Join(dir, name+".owner"),
		fl:        flock.New(filepath.Join(dir, name+".lock"), flock.SetPermissions(0o600)),
	}
	waiting := false
	for {
		stale, err := l.try(owner)
		if err == nil {
			return l, stale, nil
		}
		var busy *BusyError
		if !errors.As(err, &busy) || !opts.Wait {
			return nil, nil, err
		}
		if !waiting && opts.OnWait != nil {
			opts.OnWait(busy.Owner)
		}
		waiting = true
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for %s: %w", busy.Error(), context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

// try makes one attempt.
func (l *Lock) try(owner Owner) (*Owner, error) {
	ok, err := l.fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", l.name, err)
	}
	if !ok {
		prev, _ := readOwner(l.ownerPath)
		if prev == nil {
			prev = &Owner{}
		}
		return nil, &BusyError{Name: l.name, Owner: *prev}
	}
	prev, err := readOwner(l.ownerPath)
	if err != nil {
		_ = l.fl.Unlock()
		return nil, fmt.Errorf("lock %s: %w", l.name, err)
	}
	if prev != nil && prev.Alive() && !(prev.PID == owner.PID && prev.ProcessStart == owner.ProcessStart && prev.Host == owner.Host) {
		// flock granted, yet a live process claims the lock: a file system
		// without working flock. The PID check keeps runs apart there.
		_ = l.fl.Unlock()
		return nil, &BusyError{Name: l.name, Owner: *prev}
	}
	if err := l.writeOwner(owner); err != nil {
		_ = l.fl.Unlock()
		return nil, err
	}
	return prev, nil
}

func (l *Lock) writeOwner(o Owner) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(l.ownerPath, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("lock %s: %w", l.name, err)
	}
	return nil
}

// SetRunID records the run the owner does, once it is known (a run id is
// chosen after the lock is taken).
func (l *Lock) SetRunID(runID string) error {
	o, err := readOwner(l.ownerPath)
	if err != nil {
		return err
	}
	if o == nil {
		return fmt.Errorf("lock %s: owner file vanished", l.name)
	}
	o.RunID = runID
	return l.writeOwner(*o)
}

// Release removes the owner file and releases the lock. The lock file
// stays: removing a file others may be about to lock would let two
// processes lock different inodes of the same name.
func (l *Lock) Release() error {
	errOwner := os.Remove(l.ownerPath)
	if errors.Is(errOwner, os.ErrNotExist) {
		errOwner = nil
	}
	return errors.Join(errOwner, l.fl.Unlock())
}

// ReadOwner returns the recorded owner of lock name in dir, or nil when
// nobody holds it.
func ReadOwner(dir, name string) (*Owner, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return readOwner(filepath.Join(dir, name+".owner"))
}

func readOwner(path string) (*Owner, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var o Owner
	if err := json.Unmarshal(b, &o); err != nil {
		// A torn owner file cannot happen (atomic writes); an unreadable
		// one names nobody alive.
		return &Owner{}, nil
	}
	return &o, nil
}

// Name returns the lock name for a pipeline on a target.
func Name(pipeline, target string) string { return pipeline + "@" + target }

func checkName(name string) error {
	if name == "" || len(name) > 200 || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") || strings.ContainsRune(name, 0) {
		return fmt.Errorf("lock name %q is not a safe file name", name)
	}
	return nil
}
