package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
)

// Opener returns the executor for a name, starting it on first use
// (executor.Registry.Open).
type Opener func(ctx context.Context, name string) (executor.Executor, error)

// Runner runs one plan.
type Runner struct {
	Plan *plan.Plan
	Open Opener
	// ProjectRoot is the absolute project root; StateDir its .pipectl.
	ProjectRoot string
	StateDir    string
	Records     *record.Store
	Cache       *cache.Store
	Hasher      *cache.Hasher
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Version is pipectl's version and GitCommit the project's commit,
	// for the record and the executors.
	Version   string
	GitCommit string
	// Sink receives events, one call at a time.
	Sink func(Event)

	// after waits between retries (time.After when nil); tests replace it
	// to see the backoff without waiting.
	after func(time.Duration) <-chan time.Time
}

// Options choose what a run does.
type Options struct {
	// Parallelism bounds the stages running at once (default: CPUs).
	Parallelism int
	// Only runs just these stages; From runs a stage and its descendants.
	// Their upstream outputs come from the cache or a previous run.
	Only []string
	From string
	// NoCache runs every selected stage (results are still cached).
	NoCache bool
	// Sets are the --set values, kept in the record.
	Sets []string
	// Resume continues a run: its failed, cancelled and never-started
	// stages run, its succeeded stages' outputs are reused.
	Resume string
	// Force, when closed, stops waiting for running stages: they are
	// recorded as cancelled and Execute returns (the second Ctrl-C).
	Force <-chan struct{}
}

// UsageError is a problem with the options, found before anything runs
// (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// FailedError says a run did not succeed; Run is its record with the root
// cause in Run.Error.
type FailedError struct{ Run *record.Run }

func (e *FailedError) Error() string {
	r := e.Run
	switch {
	case r.Error == nil:
		return fmt.Sprintf("run %s %s", r.ID, r.Status)
	case r.Error.Stage != "":
		return fmt.Sprintf("run %s %s: stage %s: %s", r.ID, r.Status, r.Error.Stage, r.Error.Message)
	}
	return fmt.Sprintf("run %s %s: %s", r.ID, r.Status, r.Error.Message)
}

// ErrNothingToResume is returned by Prepare for a run that already
// succeeded.
var ErrNothingToResume = errors.New("nothing to resume")

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) wait(d time.Duration) <-chan time.Time {
	if r.after != nil {
		return r.after(d)
	}
	return time.After(d)
}

func (o Options) parallelism() int {
	if o.Parallelism > 0 {
		return o.Parallelism
	}
	return runtime.NumCPU()
}

// emitter serialises events to the sink.
type emitter struct {
	mu    sync.Mutex
	sink  func(Event)
	runID string
	now   func() time.Time
	done  bool
}

func (e *emitter) emit(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done || e.sink == nil {
		return
	}
	ev.V = EventSchema
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	ev.RunID = e.runID
	e.sink(ev)
}

// close drops events sent after the run finished (from stages abandoned by
// a forced stop).
func (e *emitter) close() {
	e.mu.Lock()
	e.done = true
	e.mu.Unlock()
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
