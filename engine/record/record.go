package record

import (
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/lock"
)

// SchemaVersion is the version of run.json's shape; it changes only when a
// field changes meaning or goes away (adding fields does not).
const SchemaVersion = 1

// Status is the state of a run or of one stage.
type Status string

const (
	// Pending: not started yet (or never, when the run ended first).
	Pending Status = "pending"
	Running Status = "running"
	// Succeeded: ran and succeeded.
	Succeeded Status = "succeeded"
	// Cached: not run; outputs from the cache or a previous run.
	Cached Status = "cached"
	Failed Status = "failed"
	// Cancelled: stopped by Ctrl-C/SIGTERM (or the whole run was).
	Cancelled Status = "cancelled"
	// Skipped: not run because an upstream stage failed or the run was
	// cancelled before it started.
	Skipped Status = "skipped"
	// Excluded: left out by --only/--from and not needed.
	Excluded Status = "excluded"
	// Interrupted: the pipectl process died while it ran.
	Interrupted Status = "interrupted"
)

// Done reports whether a stage in this status produced usable outputs.
func (s Status) Done() bool { return s == Succeeded || s == Cached }

// Final reports whether a run in this status has ended.
func (s Status) Final() bool { return s != Running && s != Pending }

// Run is run.json.
type Run struct {
	Schema         int    `json:"schema"`
	ID             string `json:"id"`
	Pipeline       string `json:"pipeline"`
	Target         string `json:"target"`
	Executor       string `json:"executor"`
	SpecHash       string `json:"spec_hash"`
	GitCommit      string `json:"git_commit,omitempty"`
	PipectlVersion string `json:"pipectl_version"`
	Status         Status `json:"status"`
	// StartedAt is when the run first started; resumes keep it (it is
	// ${run.date}).
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Options    Options   `json:"options"`
	// Owner is the process doing the run now (or last).
	Owner lock.Owner `json:"owner"`
	// Sessions are the invocations that worked on the run: the first and
	// each --resume.
	Sessions []Session `json:"sessions"`
	// Error is the root cause of a failed run, once.
	Error *RunError `json:"error,omitempty"`
	// Order lists the stages in plan order.
	Order  []string          `json:"order"`
	Stages map[string]*Stage `json:"stages"`
}

// Options are the command-line choices of the run.
type Options struct {
	Sets        []string `json:"sets,omitempty"`
	Only        []string `json:"only,omitempty"`
	From        string   `json:"from,omitempty"`
	NoCache     bool     `json:"no_cache,omitempty"`
	Parallelism int      `json:"parallelism"`
}

// Session is one invocation of pipectl on a run.
type Session struct {
	PID            int       `json:"pid"`
	Host           string    `json:"host,omitempty"`
	Resume         bool      `json:"resume,omitempty"`
	SpecHash       string    `json:"spec_hash"`
	GitCommit      string    `json:"git_commit,omitempty"`
	PipectlVersion string    `json:"pipectl_version"`
	StartedAt      time.Time `json:"started_at"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	Status         Status    `json:"status"`
}

// RunError is a run's root cause: the first stage failure (stages skipped
// because of it are not separate errors), or why the run stopped.
type RunError struct {
	Stage   string `json:"stage,omitempty"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
	// UserError: the stage's input or parameters are at fault
	// (executor.Failure.UserError); resuming the run cannot help.
	UserError bool `json:"user_error,omitempty"`
}

// Stage is one stage of a run.
type Stage struct {
	Type     string   `json:"type"`
	Executor string   `json:"executor"`
	Notebook string   `json:"notebook"`
	Needs    []string `json:"needs"`
	Status   Status   `json:"status"`
	// Reason explains skipped, excluded, cached and interrupted stages.
	Reason     string    `json:"reason,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Attempts   []Attempt `json:"attempts"`
	// Params are the parameters the notebook got (references substituted).
	Params  map[string]string  `json:"params,omitempty"`
	Outputs map[string]string  `json:"outputs,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Links   []executor.Link    `json:"links,omitempty"`
	Cache   *CacheInfo         `json:"cache,omitempty"`
	Error   *executor.Failure  `json:"error,omitempty"`
}

// CacheInfo says how the cache treated a stage.
type CacheInfo struct {
	Key string `json:"key,omitempty"`
	// Status: "hit" (outputs from the cache), "miss" (ran), "disabled"
	// (--no-cache), "selected" (--only/--from run it regardless),
	// "previous-run" (outputs of an earlier run), "resumed" (succeeded
	// earlier in this run).
	Status string `json:"status"`
	// FromRun is the run that produced the outputs on a hit.
	FromRun string `json:"from_run,omitempty"`
	// Reasons say why a miss ran (new, params changed, ...).
	Reasons []string `json:"reasons,omitempty"`
}

// Attempt is one try of a stage.
type Attempt struct {
	N          int               `json:"n"`
	Status     Status            `json:"status"`
	StartedAt  time.Time         `json:"started_at"`
	EndedAt    time.Time         `json:"ended_at,omitzero"`
	DurationMS int64             `json:"duration_ms"`
	TimedOut   bool              `json:"timed_out,omitempty"`
	Error      *executor.Failure `json:"error,omitempty"`
	// Unit names the remote unit the attempt ran in when its stage ran in
	// a group with others (executor.GroupResult.Unit, e.g. one Databricks
	// run), so that a resume can repair that unit.
	Unit string `json:"unit,omitempty"`
}

// Effective is the status to show: a running record whose owner process
// is gone is interrupted.
func (r *Run) Effective() Status {
	if r.Status == Running && !r.Owner.Alive() {
		return Interrupted
	}
	return r.Status
}

// MarkInterrupted records that the process doing the run died: the run
// and its running stages become interrupted. It reports whether anything
// changed.
func (r *Run) MarkInterrupted(now time.Time) bool {
	if r.Status != Running {
		return false
	}
	r.Status = Interrupted
	for _, name := range r.Order {
		st := r.Stages[name]
		if st == nil || st.Status != Running {
			continue
		}
		st.Status = Interrupted
		st.Reason = "pipectl stopped while the stage ran"
		for i := range st.Attempts {
			if st.Attempts[i].Status == Running {
				st.Attempts[i].Status = Interrupted
			}
		}
	}
	if n := len(r.Sessions); n > 0 && r.Sessions[n-1].Status == Running {
		r.Sessions[n-1].Status = Interrupted
	}
	if r.Error == nil {
		r.Error = &RunError{Message: "pipectl stopped before the run finished (process killed or machine restarted)"}
	}
	return true
}

// Counts returns how many stages are in each status.
func (r *Run) Counts() map[Status]int {
	c := map[Status]int{}
	for _, st := range r.Stages {
		c[st.Status]++
	}
	return c
}
