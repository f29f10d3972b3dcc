package run

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/lock"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
)

// execution is the state of one Execute.
type execution struct {
	p  *Prepared
	r  *Runner
	em *emitter

	// mu guards rec, outputs and closed.
	mu      sync.Mutex
	rec     *record.Run
	outputs map[string]map[string]string
	// closed is set when the run is finalised; late updates from stages
	// abandoned by a forced stop are dropped.
	closed bool
	date   string

	dirty     chan struct{}
	saved     chan struct{}
	finishing chan struct{}
	saveErr   error

	// groupCap caches which executors run groups (canGroup).
	groupCap map[string]bool
}

// stageDone is what a stage worker reports to the scheduler.
type stageDone struct {
	name     string
	status   record.Status
	decision *Decision
	result   executor.Result
	failure  *executor.Failure
	// reason explains a skipped stage.
	reason string
}

// Execute runs the prepared run and returns its record. onRecord, when
// set, is called with the run id as soon as the record exists (e.g. to
// name the run in the lock). The error is a *FailedError when the run did
// not succeed.
func (p *Prepared) Execute(ctx context.Context, onRecord func(id string) error) (*record.Run, error) {
	r := p.r
	e := &execution{p: p, r: r, outputs: map[string]map[string]string{}, groupCap: map[string]bool{}, dirty: make(chan struct{}, 1), saved: make(chan struct{}), finishing: make(chan struct{})}
	if err := e.open(); err != nil {
		return nil, err
	}
	e.em = &emitter{sink: r.Sink, runID: e.rec.ID, now: r.now}
	if onRecord != nil {
		if err := onRecord(e.rec.ID); err != nil {
			return nil, err
		}
	}
	go e.saver()
	e.start()
	e.schedule(ctx)
	return e.finish(ctx)
}

// open creates the record of a new run or reopens the resumed one.
func (e *execution) open() error {
	r, p, pl := e.r, e.p, e.r.Plan
	now := r.now()
	session := record.Session{PID: lockSelf(now).PID, Host: hostname(), Resume: p.resume != nil, SpecHash: pl.Pipeline.Hash,
		GitCommit: r.GitCommit, PipectlVersion: r.Version, StartedAt: now, Status: record.Running}
	rec := p.resume
	if rec == nil {
		rec = &record.Run{
			Pipeline: pl.Pipeline.Name, Target: pl.Target.Name, Executor: pl.Target.Executor,
			StartedAt: now,
			Options: record.Options{Sets: p.opts.Sets, Only: p.opts.Only, From: p.opts.From,
				NoCache: p.opts.NoCache, Parallelism: p.opts.parallelism()},
			Stages: map[string]*record.Stage{},
		}
	}
	rec.SpecHash, rec.GitCommit, rec.PipectlVersion = pl.Pipeline.Hash, r.GitCommit, r.Version
	rec.Status, rec.Error, rec.EndedAt = record.Running, nil, time.Time{}
	rec.Sessions = append(rec.Sessions, session)
	rec.Order = pl.Order()
	for name := range rec.Stages {
		if pl.Stages[name] == nil {
			delete(rec.Stages, name) // gone from the spec since
		}
	}
	for _, name := range rec.Order {
		ps := pl.Stages[name]
		st := rec.Stages[name]
		if st == nil {
			st = &record.Stage{}
			rec.Stages[name] = st
		}
		st.Type, st.Executor, st.Notebook, st.Needs = ps.Type, ps.Executor, ps.Notebook, nonNil(ps.Needs)
		if st.Attempts == nil {
			st.Attempts = []record.Attempt{}
		}
		d := p.preset[name]
		switch {
		case d == nil:
			*st = record.Stage{Type: st.Type, Executor: st.Executor, Notebook: st.Notebook, Needs: st.Needs,
				Status: record.Pending, Attempts: st.Attempts}
		case d.Action == ActExcluded:
			st.Status, st.Reason = record.Excluded, "not selected by --only/--from"
		case d.Action == ActCached || d.Action == ActPrevious:
			status := "hit"
			if d.Action == ActPrevious {
				status = "previous-run"
			}
			*st = record.Stage{Type: st.Type, Executor: st.Executor, Notebook: st.Notebook, Needs: st.Needs,
				Status: record.Cached, Reason: d.Why(), Attempts: st.Attempts, Params: d.Params,
				Outputs: d.Outputs, Metrics: d.Metrics, Links: d.Links,
				Cache: &record.CacheInfo{Key: d.Key, Status: status, FromRun: d.FromRun}}
		case d.Action == ActReuse:
			// Kept as it was.
		}
		if st.Status.Done() {
			e.outputs[name] = st.Outputs
		}
	}
	if p.resume == nil {
		rec.Owner = lockSelf(now)
		if err := r.Records.Create(rec, now); err != nil {
			return fmt.Errorf("create run record: %w", err)
		}
		rec.Owner.RunID = rec.ID
	} else {
		rec.Owner = lockSelf(now)
		rec.Owner.RunID = rec.ID
	}
	if err := r.Records.Save(rec); err != nil {
		return fmt.Errorf("write run record: %w", err)
	}
	e.rec = rec
	e.date = runDate(rec.StartedAt)
	return nil
}

// lockSelf identifies this process as the run's owner.
func lockSelf(now time.Time) lock.Owner { return lock.Self("", now) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func runDate(t time.Time) string { return t.UTC().Format("2006-01-02") }

// start reports the run and the stages settled before it.
func (e *execution) start() {
	rec := e.rec
	e.em.emit(Event{Type: RunStarted, Pipeline: rec.Pipeline, Target: rec.Target, Stages: rec.Order, Resume: e.p.resume != nil})
	for _, name := range rec.Order {
		st := rec.Stages[name]
		if st.Status == record.Pending {
			continue
		}
		ev := Event{Type: StageFinished, Stage: name, Status: st.Status, Reason: st.Reason, DurationMS: ms(0), Cache: st.Cache}
		if st.Status.Done() {
			ev.Outputs, ev.Metrics = st.Outputs, st.Metrics
			if e.p.preset[name] != nil && e.p.preset[name].Action == ActReuse {
				ev.Reason = "succeeded earlier in this run"
			}
		}
		e.em.emit(ev)
	}
}

// update changes the record unless the run was finalised, and schedules a
// save.
func (e *execution) update(f func(rec *record.Run)) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	f(e.rec)
	e.mu.Unlock()
	select {
	case e.dirty <- struct{}{}:
	default:
	}
}

// saveEvery bounds how often run.json is rewritten while a run goes on.
// A crash loses at most this much of the record's progress; the final
// state is always written.
const saveEvery = 50 * time.Millisecond

// saver writes run.json whenever it changed, coalescing bursts: a run of
// many short stages does not pay an fsync per event.
func (e *execution) saver() {
	defer close(e.saved)
	for range e.dirty {
		// Gather the changes of the next moments into one write; the end
		// of the run writes at once.
		select {
		case <-time.After(saveEvery):
		case <-e.finishing:
		}
		e.mu.Lock()
		b, err := record.Marshal(e.rec)
		e.mu.Unlock()
		if err == nil {
			err = e.r.Records.SaveBytes(e.rec.ID, b)
		}
		if err != nil && e.saveErr == nil {
			e.saveErr = err
		}
	}
}

// schedule runs stages as they become ready until none is left or the run
// is cancelled.
func (e *execution) schedule(ctx context.Context) {
	par := e.p.opts.parallelism()
	order := e.priorityOrder()
	done := make(chan stageDone)
	running := map[string]bool{}
	groupOf := map[string]*group{}
	cancelled := ctx.Done()
	stopping := false
	for {
		if !stopping {
			for _, name := range order {
				if slots(running, groupOf) >= par {
					break
				}
				if running[name] || !e.ready(name) {
					continue
				}
				g, note := e.formGroup(ctx, name, running)
				if note != "" {
					e.em.emit(Event{Type: Log, Stage: name, Stream: "pipectl", Text: note})
				}
				if g != nil {
					for _, m := range g.members {
						running[m], groupOf[m] = true, g
						e.update(func(rec *record.Run) { rec.Stages[m].Status = record.Running })
					}
					go e.runGroup(ctx, g, done)
					continue
				}
				running[name] = true
				e.update(func(rec *record.Run) { rec.Stages[name].Status = record.Running })
				go func() { done <- e.runStage(ctx, name) }()
			}
		}
		if len(running) == 0 {
			break
		}
		select {
		case d := <-done:
			delete(running, d.name)
			delete(groupOf, d.name)
			e.finishStage(d)
		case <-cancelled:
			cancelled = nil
			stopping = true
			e.skipPending("run cancelled before it started")
		case <-e.p.opts.Force:
			e.abandon(slices.Sorted(maps.Keys(running)))
			return
		}
	}
	e.skipPending("not started")
}

// ready reports whether a pending stage's dependencies all succeeded.
func (e *execution) ready(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.rec.Stages[name]
	if st.Status != record.Pending {
		return false
	}
	for _, n := range st.Needs {
		if !e.rec.Stages[n].Status.Done() {
			return false
		}
	}
	return true
}

// skipPending marks every stage that has not started as skipped.
func (e *execution) skipPending(reason string) {
	var skipped []string
	e.update(func(rec *record.Run) {
		for _, name := range rec.Order {
			if st := rec.Stages[name]; st.Status == record.Pending {
				st.Status, st.Reason = record.Skipped, reason
				skipped = append(skipped, name)
			}
		}
	})
	for _, name := range skipped {
		e.em.emit(Event{Type: StageFinished, Stage: name, Status: record.Skipped, Reason: reason, DurationMS: ms(0)})
	}
}

// abandon records stages still running at a forced stop as cancelled.
func (e *execution) abandon(names []string) {
	now := e.r.now()
	for _, name := range names {
		var dur time.Duration
		e.update(func(rec *record.Run) {
			st := rec.Stages[name]
			st.Status, st.Reason, st.EndedAt = record.Cancelled, "forced stop (second interrupt): not waited for", now
			if n := len(st.Attempts); n > 0 && st.Attempts[n-1].Status == record.Running {
				a := &st.Attempts[n-1]
				a.Status, a.EndedAt = record.Cancelled, now
				a.DurationMS = now.Sub(a.StartedAt).Milliseconds()
			}
			if !st.StartedAt.IsZero() {
				dur = now.Sub(st.StartedAt)
				st.DurationMS = dur.Milliseconds()
			}
		})
		e.em.emit(Event{Type: StageFinished, Stage: name, Status: record.Cancelled, Reason: "forced stop", DurationMS: ms(dur)})
	}
	e.skipPending("run cancelled before it started")
}

// finishStage records a stage's end, caches a success and skips the
// dependents of a failure.
func (e *execution) finishStage(d stageDone) {
	r := e.r
	now := r.now()
	var ev Event
	var descendants []string
	if d.status == record.Failed || d.status == record.Cancelled {
		descendants = r.Plan.Graph.Descendants(d.name)
	}
	var skipped []string
	e.update(func(rec *record.Run) {
		st := rec.Stages[d.name]
		st.Status = d.status
		st.EndedAt = now
		if st.StartedAt.IsZero() {
			st.StartedAt = now
		}
		st.DurationMS = now.Sub(st.StartedAt).Milliseconds()
		st.Error = d.failure
		if d.reason != "" {
			st.Reason = d.reason
		}
		if d.decision != nil {
			st.Params = d.decision.Params
			st.Cache = cacheInfo(d)
		}
		switch d.status {
		case record.Succeeded:
			st.Outputs, st.Metrics = d.result.Outputs, d.result.Metrics
			st.Links = mergeLinks(st.Links, d.result.Links)
			e.outputs[d.name] = st.Outputs
		case record.Cached:
			st.Outputs, st.Metrics, st.Links = d.decision.Outputs, d.decision.Metrics, d.decision.Links
			st.Reason = d.decision.Why()
			e.outputs[d.name] = st.Outputs
		case record.Failed, record.Cancelled:
			if rec.Error == nil && d.status == record.Failed && d.failure != nil {
				rec.Error = &record.RunError{Stage: d.name, Message: d.failure.Message, Detail: d.failure.Detail, UserError: d.failure.UserError}
			}
			for _, n := range descendants {
				if ds := rec.Stages[n]; ds != nil && ds.Status == record.Pending {
					ds.Status, ds.Reason = record.Skipped, fmt.Sprintf("upstream %s %s", d.name, d.status)
					skipped = append(skipped, n)
				}
			}
		}
		ev = Event{Type: StageFinished, Stage: d.name, Status: st.Status, DurationMS: ms(time.Duration(st.DurationMS) * time.Millisecond),
			Outputs: st.Outputs, Metrics: st.Metrics, Cache: st.Cache, Reason: st.Reason, Error: st.Error}
		if n := len(st.Attempts); n > 0 && d.status != record.Cached {
			ev.Attempt = st.Attempts[n-1].N
		}
	})
	e.em.emit(ev)
	for _, n := range skipped {
		e.em.emit(Event{Type: StageFinished, Stage: n, Status: record.Skipped, Reason: fmt.Sprintf("upstream %s %s", d.name, d.status), DurationMS: ms(0)})
	}
}

func cacheInfo(d stageDone) *record.CacheInfo {
	dec := d.decision
	ci := &record.CacheInfo{Key: dec.Key}
	switch {
	case dec.Action == ActCached:
		ci.Status, ci.FromRun = "hit", dec.FromRun
	case len(dec.Reasons) > 0 && dec.Reasons[0] == ReasonNoCache:
		ci.Status = "disabled"
	case len(dec.Reasons) > 0 && dec.Reasons[0] == ReasonSelected:
		ci.Status = "selected"
	default:
		ci.Status, ci.Reasons = "miss", dec.Reasons
	}
	return ci
}

func mergeLinks(have, more []executor.Link) []executor.Link {
	for _, l := range more {
		if !slices.ContainsFunc(have, func(h executor.Link) bool { return h.URL == l.URL }) {
			have = append(have, l)
		}
	}
	return have
}

// finish settles the run's status, writes the record a last time and
// reports the end.
func (e *execution) finish(ctx context.Context) (*record.Run, error) {
	now := e.r.now()
	forced := false
	select {
	case <-e.p.opts.Force:
		forced = true
	default:
	}
	e.update(func(rec *record.Run) {
		c := rec.Counts()
		unfinished := c[record.Failed] + c[record.Cancelled] + c[record.Skipped] + c[record.Pending] + c[record.Running]
		switch {
		case unfinished > 0 && (ctx.Err() != nil || forced):
			rec.Status = record.Cancelled
			if rec.Error == nil {
				rec.Error = &record.RunError{Message: cancelCause(ctx, forced)}
			}
		case unfinished > 0:
			rec.Status = record.Failed
			if rec.Error == nil {
				rec.Error = &record.RunError{Message: "a stage did not finish"}
			}
		default:
			rec.Status = record.Succeeded
		}
		rec.EndedAt = now
		s := &rec.Sessions[len(rec.Sessions)-1]
		s.EndedAt, s.Status = now, rec.Status
		var total time.Duration
		for _, s := range rec.Sessions {
			if !s.EndedAt.IsZero() {
				total += s.EndedAt.Sub(s.StartedAt)
			}
		}
		rec.DurationMS = total.Milliseconds()
	})
	e.mu.Lock()
	e.closed = true
	rec := e.rec
	last := map[string]string{}
	for name, st := range rec.Stages {
		if st.Status.Done() && st.Cache != nil && st.Cache.Key != "" {
			last[name] = st.Cache.Key
		}
	}
	e.mu.Unlock()
	close(e.finishing)
	close(e.dirty)
	if err := e.r.Cache.SetLast(rec.Pipeline, rec.Target, last); err != nil {
		e.em.emit(Event{Type: Log, Stream: "pipectl", Text: "warning: cannot update the cache index: " + err.Error()})
	}
	<-e.saved
	saveErr := e.saveErr
	if err := e.r.Records.Save(rec); err != nil && saveErr == nil {
		saveErr = err
	}
	e.em.emit(Event{Type: RunFinished, Status: rec.Status, DurationMS: ms(time.Duration(rec.DurationMS) * time.Millisecond), RunError: rec.Error})
	e.em.close()
	if saveErr != nil {
		return rec, fmt.Errorf("write run record %s: %w", rec.ID, saveErr)
	}
	if rec.Status != record.Succeeded {
		return rec, &FailedError{Run: rec}
	}
	return rec, nil
}

func cancelCause(ctx context.Context, forced bool) string {
	if forced {
		return "interrupted twice: running stages were not waited for"
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	return "interrupted (Ctrl-C or SIGTERM)"
}

// task builds the executor task of an attempt.
func (r *Runner) task(st *plan.Stage, params map[string]string, runID, key string, attempt int) executor.Task {
	return executor.Task{
		RunID: runID, Pipeline: r.Plan.Pipeline.Name, Target: r.Plan.Target.Name,
		Stage: st.Name, Type: st.Type, Notebook: st.Notebook, ProjectRoot: r.ProjectRoot,
		Params: params, Attempt: attempt, Timeout: st.Timeout, Config: st.ExecutorConfig,
		CacheKey: key, GitCommit: r.GitCommit, StateDir: r.StateDir, Outputs: st.Outputs,
	}
}
