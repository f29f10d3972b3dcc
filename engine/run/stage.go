package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/engine/secret"
)

// maxBackoff caps the wait between attempts.
const maxBackoff = 30 * time.Minute

// Backoff is the wait before retry n (n from 1): base, 2·base, 4·base...,
// at most 30 minutes.
func Backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= maxBackoff {
			return maxBackoff
		}
	}
	return min(d, maxBackoff)
}

// runStage substitutes a stage's parameters, consults the cache and runs
// its attempts.
func (e *execution) runStage(ctx context.Context, name string) stageDone {
	r := e.r
	st := r.Plan.Stages[name]
	if ctx.Err() != nil {
		return stageDone{name: name, status: record.Cancelled}
	}
	e.mu.Lock()
	params, err := r.render(st, e.outputs, e.rec.ID, e.date)
	e.mu.Unlock()
	if err != nil {
		return stageDone{name: name, status: record.Failed, failure: &executor.Failure{
			Message: fmt.Sprintf("cannot substitute parameters: %v", err),
			Detail:  "an upstream stage did not return an output this stage references; check the upstream notebook's exit value against docs/STAGES.md"}}
	}
	d := r.decide(ctx, st, params, decideOpts{forced: e.p.forced[name], noCache: e.p.opts.NoCache})
	if d.Action == ActRun {
		d.Reasons = e.p.resumeReasons(name, d.Reasons)
	}
	if d.Action == ActCached {
		// No log: the record says where the outputs came from.
		return stageDone{name: name, status: record.Cached, decision: d}
	}
	log, err := r.Records.OpenLog(e.rec.ID, name)
	if err != nil {
		return stageDone{name: name, status: record.Failed, decision: d, failure: &executor.Failure{Message: "cannot open the stage log: " + err.Error()}}
	}
	defer log.Close()
	// A notebook may print a credential it was given: the log masks it.
	log.Redact(secret.Values(d.Params))
	return e.attempts(ctx, st.Name, d, log)
}

// attempts runs a stage until it succeeds, fails for good or is
// cancelled. Only a retryable failure or an executor error is retried.
func (e *execution) attempts(ctx context.Context, name string, d *Decision, log *record.Log) stageDone {
	r := e.r
	st := r.Plan.Stages[name]
	var first int
	e.update(func(rec *record.Run) {
		rs := rec.Stages[name]
		first = len(rs.Attempts) + 1
		rs.StartedAt = r.now()
		rs.Params = d.Params
	})
	for n := first; ; n++ {
		started := r.now()
		e.update(func(rec *record.Run) {
			rs := rec.Stages[name]
			rs.Status = record.Running
			rs.Attempts = append(rs.Attempts, record.Attempt{N: n, Status: record.Running, StartedAt: started})
		})
		log.Line(started, n, "pipectl", fmt.Sprintf("attempt %d started (%s)", n, d.Why()))
		e.em.emit(Event{Type: StageStarted, Stage: name, Attempt: n, Cache: &record.CacheInfo{Key: d.Key, Status: "miss", Reasons: d.Reasons}})

		res, failure, status, timedOut := e.attempt(ctx, name, n, d, log)

		ended := r.now()
		e.update(func(rec *record.Run) {
			rs := rec.Stages[name]
			a := &rs.Attempts[len(rs.Attempts)-1]
			a.Status, a.EndedAt, a.DurationMS, a.TimedOut, a.Error = status, ended, ended.Sub(started).Milliseconds(), timedOut, failure
			rs.Links = mergeLinks(rs.Links, res.Links)
		})
		if status == record.Succeeded {
			log.Line(ended, n, "pipectl", fmt.Sprintf("attempt %d succeeded in %s", n, ended.Sub(started).Round(time.Millisecond)))
			e.remember(name, d, res, log)
			return stageDone{name: name, status: status, decision: d, result: res}
		}
		if status == record.Cancelled {
			log.Line(ended, n, "pipectl", fmt.Sprintf("attempt %d cancelled", n))
			return stageDone{name: name, status: status, decision: d, result: res}
		}
		log.Line(ended, n, "pipectl", fmt.Sprintf("attempt %d %s: %s", n, status, failure.Message))
		if failure.Detail != "" {
			log.Line(ended, n, "pipectl", failure.Detail)
		}
		retriesLeft := st.Retries - (n - first)
		if status != record.Failed || !failure.Retryable || retriesLeft <= 0 {
			return stageDone{name: name, status: status, decision: d, result: res, failure: failure}
		}
		delay := Backoff(st.RetryBackoff, n-first+1)
		log.Line(r.now(), n, "pipectl", fmt.Sprintf("retrying in %s (%d %s left)", delay, retriesLeft, plural(retriesLeft, "retry", "retries")))
		e.em.emit(Event{Type: StageRetrying, Stage: name, Attempt: n, DelayMS: ms(delay), Error: failure})
		select {
		case <-r.wait(delay):
		case <-ctx.Done():
			log.Line(r.now(), n, "pipectl", "cancelled while waiting to retry")
			return stageDone{name: name, status: record.Cancelled, decision: d}
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// attempt runs one attempt and classifies how it ended.
func (e *execution) attempt(ctx context.Context, name string, n int, d *Decision, log *record.Log) (res executor.Result, failure *executor.Failure, status record.Status, timedOut bool) {
	r := e.r
	st := r.Plan.Stages[name]
	actx, cancel := ctx, context.CancelFunc(func() {})
	if st.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, st.Timeout)
	}
	defer cancel()
	task := r.task(st, d.Params, e.rec.ID, d.Key, n)
	task.LogPath = r.Records.LogPath(e.rec.ID, name)
	sink := func(ev executor.Event) { e.event(name, n, ev, log) }

	ex, err := r.Open(actx, st.Executor)
	if err == nil {
		res, err = ex.Run(actx, task, sink)
	}
	timedOut = errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	switch {
	case err == nil && res.Status == executor.Succeeded:
		return res, nil, record.Succeeded, false
	case ctx.Err() != nil:
		return res, nil, record.Cancelled, false
	case timedOut:
		return res, &executor.Failure{Message: fmt.Sprintf("timed out after %s (the stage's timeout; raise it in the spec if the stage needs longer)", st.Timeout)}, record.Failed, true
	case err != nil:
		return res, &executor.Failure{Message: fmt.Sprintf("executor %s: %v", st.Executor, err), Retryable: true}, record.Failed, false
	case res.Status == executor.Failed:
		f := res.Error
		if f == nil {
			f = &executor.Failure{Message: "failed (the executor gave no reason)"}
		}
		return res, f, record.Failed, false
	case res.Status == executor.Cancelled:
		msg := "cancelled by the executor"
		if res.Error != nil && res.Error.Message != "" {
			msg += ": " + res.Error.Message
		}
		return res, &executor.Failure{Message: msg}, record.Failed, false
	default:
		return res, &executor.Failure{Message: fmt.Sprintf("executor %s: %v %q", st.Executor, errNoStatus, res.Status)}, record.Failed, false
	}
}

// event logs and forwards one executor event.
func (e *execution) event(name string, n int, ev executor.Event, log *record.Log) {
	// Stamped on receipt with the runner's clock: one clock for every
	// line keeps a stage log in order whatever the executor's clock says.
	t := e.r.now()
	switch ev.Kind {
	case executor.EventLog:
		stream := ev.Stream
		if stream == "" {
			stream = "stdout"
		}
		log.Line(t, n, stream, ev.Text)
		e.em.emit(Event{Type: Log, Stage: name, Attempt: n, Stream: stream, Text: ev.Text})
	case executor.EventProgress:
		text := ev.Text
		out := Event{Type: Progress, Stage: name, Attempt: n, Text: ev.Text}
		if ev.Fraction >= 0 && ev.Fraction <= 1 && ev.Fraction != 0 {
			f := ev.Fraction
			out.Fraction = &f
			text = fmt.Sprintf("%s (%.0f%%)", text, f*100)
		}
		log.Line(t, n, "progress", text)
		e.em.emit(out)
	case executor.EventLink:
		if ev.Link == nil {
			return
		}
		l := *ev.Link
		log.Line(t, n, "link", l.Label+" "+l.URL)
		e.update(func(rec *record.Run) { rec.Stages[name].Links = mergeLinks(rec.Stages[name].Links, []executor.Link{l}) })
		e.em.emit(Event{Type: Link, Stage: name, Attempt: n, Link: &l})
	}
}

// remember caches a success (in the stage's goroutine: the write must not
// hold up the scheduler).
func (e *execution) remember(name string, d *Decision, res executor.Result, log *record.Log) {
	if d.Components == nil {
		return
	}
	entry := &cache.Entry{Key: d.Key, Components: *d.Components, Outputs: res.Outputs, Metrics: res.Metrics, Links: res.Links,
		Pipeline: e.rec.Pipeline, Target: e.rec.Target, Stage: name, RunID: e.rec.ID, CreatedAt: e.r.now()}
	if err := e.r.Cache.Put(entry); err != nil {
		log.Line(e.r.now(), 0, "pipectl", "warning: cannot write the cache entry: "+err.Error())
	}
}
