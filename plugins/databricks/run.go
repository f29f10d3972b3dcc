package databricks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
)

// Poll is the schedule of runs/get while a run is active: the first poll
// is immediate (it yields the run page), then intervals grow from First by
// Step up to Max, with ±10% jitter. Termination is noticed within about Max
// plus one round trip, at no more than one poll per Max per run in steady
// state.
type Poll struct {
	First, Step, Max time.Duration
	// CancelWait bounds the wait for a cancelled run to terminate.
	CancelWait time.Duration
	// ErrorBudget is how long polling may keep failing (after the SDK's own
	// retries) before the stage fails as retryable.
	ErrorBudget time.Duration
}

// DefaultPoll polls after 0.5 s, 1 s, 1.5 s, ... and every 3 s from the
// sixth poll on.
var DefaultPoll = Poll{First: 500 * time.Millisecond, Step: 500 * time.Millisecond, Max: 3 * time.Second,
	CancelWait: 10 * time.Minute, ErrorBudget: 10 * time.Minute}

func (e *Executor) poll() Poll {
	p := e.Poll
	d := DefaultPoll
	if p.First <= 0 {
		p.First = d.First
	}
	if p.Step <= 0 {
		p.Step = d.Step
	}
	if p.Max <= 0 {
		p.Max = d.Max
	}
	if p.CancelWait <= 0 {
		p.CancelWait = d.CancelWait
	}
	if p.ErrorBudget <= 0 {
		p.ErrorBudget = d.ErrorBudget
	}
	return p
}

func (p Poll) interval(n int) time.Duration {
	d := min(p.First+time.Duration(n)*p.Step, p.Max)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// runStatus summarises a run's state from status (or the deprecated state
// when status is missing).
type runStatus struct {
	terminal, pending bool
	// label is shown in progress events.
	label string
}

func statusOf(r *jobs.Run) runStatus {
	if s := r.Status; s != nil && s.State != "" {
		st := runStatus{label: string(s.State)}
		switch s.State {
		case jobs.RunLifecycleStateV2StateTerminated:
			st.terminal = true
			if td := s.TerminationDetails; td != nil {
				st.label += " " + string(td.Code)
			}
		case jobs.RunLifecycleStateV2StateQueued, jobs.RunLifecycleStateV2StatePending,
			jobs.RunLifecycleStateV2StateBlocked, jobs.RunLifecycleStateV2StateWaiting:
			st.pending = true
		}
		return st
	}
	if s := r.State; s != nil {
		st := runStatus{label: string(s.LifeCycleState)}
		switch s.LifeCycleState {
		case jobs.RunLifeCycleStateTerminated, jobs.RunLifeCycleStateSkipped, jobs.RunLifeCycleStateInternalError:
			st.terminal = true
			if s.ResultState != "" {
				st.label += " " + string(s.ResultState)
			}
		case jobs.RunLifeCycleStateQueued, jobs.RunLifeCycleStatePending, jobs.RunLifeCycleStateBlocked,
			jobs.RunLifeCycleStateWaitingForRetry:
			st.pending = true
		}
		return st
	}
	return runStatus{label: "UNKNOWN"}
}

// verdict judges a terminated run: success only for a terminal SUCCESS (the
// SDK's waiter returns no error for FAILED runs); INTERNAL_ERROR and
// CLOUD_FAILURE terminations may pass on a retry, client errors never.
type verdict struct {
	ok, retryable, timedOut, cancelled bool
	// code and message are the termination's.
	code, message string
}

func judge(r *jobs.Run) verdict {
	var v verdict
	if s := r.Status; s != nil && s.TerminationDetails != nil && s.TerminationDetails.Type != "" {
		td := s.TerminationDetails
		v.ok = td.Type == jobs.TerminationTypeTypeSuccess && td.Code == jobs.TerminationCodeCodeSuccess
		v.retryable = td.Type == jobs.TerminationTypeTypeInternalError || td.Type == jobs.TerminationTypeTypeCloudFailure
		v.code, v.message = string(td.Code), td.Message
		v.cancelled = td.Code == jobs.TerminationCodeCodeUserCanceled || td.Code == jobs.TerminationCodeCodeCanceled
	} else if s := r.State; s != nil {
		v.ok = s.LifeCycleState == jobs.RunLifeCycleStateTerminated && s.ResultState == jobs.RunResultStateSuccess
		v.retryable = s.LifeCycleState == jobs.RunLifeCycleStateInternalError
		v.code, v.message = string(s.ResultState), s.StateMessage
		if v.code == "" {
			v.code = string(s.LifeCycleState)
		}
	}
	if s := r.State; s != nil {
		v.timedOut = s.ResultState == jobs.RunResultStateTimedout
		v.cancelled = v.cancelled || s.ResultState == jobs.RunResultStateCanceled
	}
	return v
}

// follow polls a submitted run until it ends and turns it into a result.
func (e *Executor) follow(ctx context.Context, c *Client, task executor.Task, runID int64, sink executor.EventSink,
	emit func(executor.EventKind, string)) executor.Result {
	p := e.poll()
	submitted := time.Now()
	var pageURL, last string
	var failingSince time.Time
	for n := 0; ; n++ {
		if n > 0 {
			timer := time.NewTimer(p.interval(n - 1))
			select {
			case <-ctx.Done():
				timer.Stop()
				return e.stop(ctx, c, task, runID, pageURL, emit)
			case <-timer.C:
			}
		}
		run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: runID})
		if err != nil {
			if ctx.Err() != nil {
				return e.stop(ctx, c, task, runID, pageURL, emit)
			}
			if !transient(err) {
				e.cancelQuietly(ctx, c, runID, p)
				return e.apiFailure(c, fmt.Sprintf("follow run %d", runID), err)
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > p.ErrorBudget {
				e.cancelQuietly(ctx, c, runID, p)
				return e.apiFailure(c, fmt.Sprintf("follow run %d for %s", runID, p.ErrorBudget), err)
			}
			emit(executor.EventLog, fmt.Sprintf("databricks: polling run %d failed, will retry: %v", runID, c.red.err(err)))
			continue
		}
		failingSince = time.Time{}
		if pageURL == "" && run.RunPageUrl != "" {
			pageURL = run.RunPageUrl
			sink(executor.Event{Time: time.Now(), Kind: executor.EventLink,
				Link: &executor.Link{Label: fmt.Sprintf("Databricks run %d", runID), URL: pageURL}})
		}
		st := statusOf(run)
		for _, t := range run.Tasks {
			if t.TaskKey == task.Stage && !st.terminal {
				// A run can be RUNNING while its task still waits for compute.
				ts := statusOf(&jobs.Run{Status: t.Status, State: t.State})
				st.pending = st.pending || ts.pending
			}
		}
		if st.label != last {
			last = st.label
			emit(executor.EventProgress, fmt.Sprintf("databricks: run %d %s", runID, st.label))
		}
		if st.terminal {
			return e.finish(ctx, c, task, run, pageURL, emit)
		}
		if st.pending && task.Timeout > 0 && time.Since(submitted) > task.Timeout {
			emit(executor.EventLog, fmt.Sprintf("databricks: run %d is still %s after %s, the stage timeout; cancelling it", runID, st.label, task.Timeout))
			if err := e.cancelAndWait(ctx, c, runID, p); err != nil {
				emit(executor.EventLog, fmt.Sprintf("databricks: cancelling run %d: %v", runID, c.red.err(err)))
			}
			return executor.Result{Status: executor.Failed, Links: links(runID, pageURL), Error: &executor.Failure{
				Message:   fmt.Sprintf("Databricks run %d stayed %s for longer than the stage timeout (%s) and was cancelled; compute may be unavailable: %s", runID, st.label, task.Timeout, pageURL),
				Retryable: true}}
		}
	}
}

func links(runID int64, pageURL string) []executor.Link {
	if pageURL == "" {
		return nil
	}
	return []executor.Link{{Label: fmt.Sprintf("Databricks run %d", runID), URL: pageURL}}
}

// stop cancels the remote run after ctx ended and waits until it has
// terminated, so that no run is left running (and billing).
func (e *Executor) stop(ctx context.Context, c *Client, task executor.Task, runID int64, pageURL string,
	emit func(executor.EventKind, string)) executor.Result {
	p := e.poll()
	emit(executor.EventLog, fmt.Sprintf("databricks: cancelling run %d", runID))
	err := e.cancelAndWait(ctx, c, runID, p)
	res := executor.Result{Status: executor.Cancelled, Links: links(runID, pageURL),
		Error: &executor.Failure{Message: fmt.Sprintf("cancelled; Databricks run %d was cancelled", runID)}}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.Status = executor.Failed
		res.Error.Message = fmt.Sprintf("timed out after %s; Databricks run %d was cancelled", task.Timeout, runID)
	}
	if err != nil {
		res.Error.Message = fmt.Sprintf("cancelled, but cancelling Databricks run %d failed (%v): check %s", runID, c.red.err(err), pageURL)
	}
	return res
}

// cancelAndWait asks Databricks to cancel a run (asynchronous) and polls
// until the run has terminated, within p.CancelWait.
func (e *Executor) cancelAndWait(ctx context.Context, c *Client, runID int64, p Poll) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.CancelWait)
	defer cancel()
	if _, err := c.W.Jobs.CancelRun(cctx, jobs.CancelRun{RunId: runID}); err != nil {
		return err
	}
	for n := 0; ; n++ {
		run, err := c.W.Jobs.GetRun(cctx, jobs.GetRunRequest{RunId: runID})
		if err == nil && statusOf(run).terminal {
			return nil
		}
		if err != nil && !transient(err) {
			return err
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("run %d did not terminate within %s of being cancelled", runID, p.CancelWait)
		case <-time.After(min(p.First+time.Duration(n)*p.Step, time.Second)):
		}
	}
}

func (e *Executor) cancelQuietly(ctx context.Context, c *Client, runID int64, p Poll) {
	p.CancelWait = min(p.CancelWait, time.Minute)
	_ = e.cancelAndWait(ctx, c, runID, p)
}

// finish reads a terminated run's outcome from runs/get-output of the
// stage's TASK run (the parent run id is refused for multi-task runs).
func (e *Executor) finish(ctx context.Context, c *Client, task executor.Task, run *jobs.Run, pageURL string,
	emit func(executor.EventKind, string)) executor.Result {
	v := judge(run)
	res := executor.Result{Links: links(run.RunId, pageURL)}
	taskRunID := run.RunId
	for _, t := range run.Tasks {
		if t.TaskKey == task.Stage || len(run.Tasks) == 1 {
			taskRunID = t.RunId
		}
	}
	out, err := c.W.Jobs.GetRunOutput(context.WithoutCancel(ctx), jobs.GetRunOutputRequest{RunId: taskRunID})
	if v.ok {
		if err != nil {
			return e.apiFailure(c, fmt.Sprintf("read the output of run %d", taskRunID), err)
		}
		return e.succeed(c, task, res, out, emit)
	}
	res.Status = executor.Failed
	f := &executor.Failure{Retryable: v.retryable}
	where := fmt.Sprintf("Databricks run %d", run.RunId)
	if pageURL != "" {
		where += " (" + pageURL + ")"
	}
	switch {
	case v.timedOut:
		f.Message = fmt.Sprintf("stage %s timed out on Databricks after %s: %s", task.Stage, task.Timeout, where)
	case v.cancelled:
		f.Message = fmt.Sprintf("stage %s was cancelled on Databricks, not by pipectl: %s", task.Stage, where)
	default:
		reason := v.message
		if err == nil && out.Error != "" {
			reason = firstLine(out.Error)
		}
		f.Message = fmt.Sprintf("stage %s failed on Databricks: %s [%s]: %s", task.Stage, reason, v.code, where)
	}
	if err == nil {
		f.Detail = traceTail(out.ErrorTrace)
	}
	f.Message, f.Detail = c.red.String(f.Message), c.red.String(f.Detail)
	res.Error = f
	return res
}

func (e *Executor) succeed(c *Client, task executor.Task, res executor.Result, out *jobs.RunOutput,
	emit func(executor.EventKind, string)) executor.Result {
	if out.NotebookOutput == nil || out.NotebookOutput.Result == "" {
		if len(task.Outputs) == 0 {
			res.Status = executor.Succeeded
			return res
		}
		return failure("notebook %s finished without an exit value: a %s stage must end with dbutils.notebook.exit(json.dumps(%s)) (docs/STAGES.md)", task.Notebook, task.Type, executor.ExitValueShape)
	}
	if out.NotebookOutput.Truncated {
		return failure("notebook %s returned an exit value over 5 MB, which Databricks truncates: keep outputs small (URIs, ids, counts)", task.Notebook)
	}
	ev, err := executor.ParseExitValue([]byte(out.NotebookOutput.Result), task.Outputs)
	if err != nil {
		return failure("notebook %s: %s", task.Notebook, c.red.String(err.Error()))
	}
	for _, w := range ev.Warnings {
		emit(executor.EventLog, "pipectl: "+w)
	}
	res.Status = executor.Succeeded
	res.Outputs = map[string]string{}
	for k, v := range ev.Outputs {
		res.Outputs[k] = c.red.String(v)
	}
	if len(ev.Metrics) > 0 {
		res.Metrics = ev.Metrics
	}
	return res
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// traceTail keeps the end of an error trace: the frames nearest the error
// and the error itself.
func traceTail(trace string) string {
	lines := strings.Split(strings.TrimRight(trace, "\n"), "\n")
	if len(lines) > 30 {
		lines = append([]string{"..."}, lines[len(lines)-30:]...)
	}
	out := strings.Join(lines, "\n")
	if len(out) > 8000 {
		out = "..." + out[len(out)-8000:]
	}
	return out
}
