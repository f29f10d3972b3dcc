package emulator

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// maxOutputBytes is what runs/get-output returns of an exit value.
const maxOutputBytes = 5 << 20

// state is where a run or a task run is in its life cycle, in both the
// legacy (state) and the current (status) vocabularies.
type state struct {
	life   jobs.RunLifeCycleState
	result jobs.RunResultState
	ttype  jobs.TerminationTypeType
	tcode  jobs.TerminationCodeCode
	msg    string
	// cancelledOrTimedOut is user_cancelled_or_timedout.
	cancelledOrTimedOut bool
}

func (s state) terminal() bool {
	switch s.life {
	case jobs.RunLifeCycleStateTerminated, jobs.RunLifeCycleStateSkipped, jobs.RunLifeCycleStateInternalError:
		return true
	}
	return false
}

func (s state) legacy() *jobs.RunState {
	return &jobs.RunState{LifeCycleState: s.life, ResultState: s.result, StateMessage: s.msg,
		UserCancelledOrTimedout: s.cancelledOrTimedOut, ForceSendFields: []string{"StateMessage", "UserCancelledOrTimedout"}}
}

func (s state) status() *jobs.RunStatus {
	st := &jobs.RunStatus{}
	switch s.life {
	case jobs.RunLifeCycleStateQueued:
		st.State = jobs.RunLifecycleStateV2StateQueued
		st.QueueDetails = &jobs.QueueDetails{Code: jobs.QueueDetailsCodeCodeMaxConcurrentRunsReached, Message: s.msg}
	case jobs.RunLifeCycleStatePending:
		st.State = jobs.RunLifecycleStateV2StatePending
	case jobs.RunLifeCycleStateBlocked:
		st.State = jobs.RunLifecycleStateV2StateBlocked
	case jobs.RunLifeCycleStateRunning:
		st.State = jobs.RunLifecycleStateV2StateRunning
	case jobs.RunLifeCycleStateTerminating:
		st.State = jobs.RunLifecycleStateV2StateTerminating
	default:
		st.State = jobs.RunLifecycleStateV2StateTerminated
		st.TerminationDetails = &jobs.TerminationDetails{Type: s.ttype, Code: s.tcode, Message: s.msg}
	}
	return st
}

func succeeded() state {
	return state{life: jobs.RunLifeCycleStateTerminated, result: jobs.RunResultStateSuccess,
		ttype: jobs.TerminationTypeTypeSuccess, tcode: jobs.TerminationCodeCodeSuccess}
}

func failed(code jobs.TerminationCodeCode, msg string) state {
	return state{life: jobs.RunLifeCycleStateTerminated, result: jobs.RunResultStateFailed,
		ttype: jobs.TerminationTypeTypeClientError, tcode: code, msg: msg}
}

func internalError(ttype jobs.TerminationTypeType, code jobs.TerminationCodeCode, msg string) state {
	return state{life: jobs.RunLifeCycleStateInternalError, result: jobs.RunResultStateFailed,
		ttype: ttype, tcode: code, msg: msg}
}

func cancelled(msg string) state {
	return state{life: jobs.RunLifeCycleStateTerminated, result: jobs.RunResultStateCanceled,
		ttype: jobs.TerminationTypeTypeClientError, tcode: jobs.TerminationCodeCodeUserCanceled, msg: msg, cancelledOrTimedOut: true}
}

func timedOut(msg string) state {
	return state{life: jobs.RunLifeCycleStateTerminated, result: jobs.RunResultStateTimedout,
		ttype: jobs.TerminationTypeTypeClientError, tcode: jobs.TerminationCodeCodeRunExecutionError, msg: msg, cancelledOrTimedOut: true}
}

func skipped(result jobs.RunResultState, msg string) state {
	return state{life: jobs.RunLifeCycleStateSkipped, result: result,
		ttype: jobs.TerminationTypeTypeSuccess, tcode: jobs.TerminationCodeCodeSkipped, msg: msg}
}

// run is a job run or a submitted run: a parent of task runs.
type run struct {
	id, jobID, number int64
	name              string
	runType           jobs.RunType
	trigger           jobs.TriggerType
	tasks             []*taskRun
	git               *jobs.GitSource
	envs              []jobs.JobEnvironment
	// params are the job parameters (run-now job_parameters over defaults)
	// and notebookParams the legacy notebook_params; both override
	// base_parameters.
	params, notebookParams map[string]string
	timeout                time.Duration
	created, start, end    time.Time
	st                     state
	queued                 bool

	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}

	// computeReady is when each compute of the run is up (computeWait);
	// repairs are the run's repairs, oldest first.
	computeReady map[string]time.Time
	repairs      []repair

	checkoutOnce sync.Once
	checkout     string
	checkoutErr  error

	stats RunStats
}

func (r *run) terminal() bool { return r.st.terminal() }

func (r *run) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// taskRun is one task of a run.
type taskRun struct {
	id      int64
	run     *run
	spec    jobs.Task
	st      state
	started bool
	start   time.Time
	end     time.Time
	// params are the base parameters as resolved when the task started.
	params    map[string]string
	exitValue string
	truncated bool
	errMsg    string
	errTrace  string
	values    map[string]any
	logPath   string
	// cancel stops the task's execution; why is the state it ends in.
	cancel context.CancelFunc
	why    *state
}

// RunStats is what the emulator observed of a run, for measurements.
type RunStats struct {
	// TerminatedAt is when the run reached a terminal state.
	TerminatedAt time.Time
	// FirstSeenTerminated is when a runs/get first returned the run in a
	// terminal state.
	FirstSeenTerminated time.Time
	// Gets are the times of the runs/get calls for the run or its tasks.
	Gets []time.Time
}

// RunStats returns what the emulator observed of run id.
func (e *Emulator) RunStats(id int64) (RunStats, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[id]
	if !ok {
		return RunStats{}, false
	}
	s := r.stats
	s.Gets = slices.Clone(s.Gets)
	return s, true
}

// ActiveRuns returns the ids of the runs that are not terminated yet.
func (e *Emulator) ActiveRuns() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []int64
	for id, r := range e.runs {
		if !r.terminal() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// RunIDs returns the ids of every run, oldest first.
func (e *Emulator) RunIDs() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := slices.Collect(maps.Keys(e.runs))
	slices.Sort(ids)
	return ids
}

// TaskRunIDs returns the ids of a run's task runs, in task order.
func (e *Emulator) TaskRunIDs(runID int64) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[runID]
	if !ok {
		return nil
	}
	var ids []int64
	for _, t := range r.tasks {
		ids = append(ids, t.id)
	}
	return ids
}

// TaskLog returns what the notebook process of a task run printed.
func (e *Emulator) TaskLog(taskRunID int64) string {
	e.mu.Lock()
	t, ok := e.tasks[taskRunID]
	e.mu.Unlock()
	if !ok || t.logPath == "" {
		return ""
	}
	b, _ := readFileLimit(t.logPath, 1<<20)
	return string(b)
}

// newRunLocked creates a run of tasks; callers hold e.mu and start it with
// startLocked.
func (e *Emulator) newRunLocked(runType jobs.RunType, jobID int64, name string, tasks []jobs.Task, git *jobs.GitSource,
	envs []jobs.JobEnvironment, timeoutSeconds int) *run {
	ctx, cancel := context.WithCancel(e.ctx)
	r := &run{id: e.id(), jobID: jobID, name: name, runType: runType, trigger: jobs.TriggerTypeOneTime,
		git: git, envs: envs, timeout: time.Duration(timeoutSeconds) * time.Second, created: time.Now(),
		st: state{life: jobs.RunLifeCycleStatePending}, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	if jobID == 0 {
		r.jobID = e.id() // submitted runs belong to an anonymous job
	}
	for _, t := range tasks {
		tr := &taskRun{id: e.id(), run: r, spec: t, st: state{life: jobs.RunLifeCycleStatePending}}
		if len(t.DependsOn) > 0 {
			tr.st.life = jobs.RunLifeCycleStateBlocked
		}
		r.tasks = append(r.tasks, tr)
		e.tasks[tr.id] = tr
	}
	e.runs[r.id] = r
	return r
}

func (e *Emulator) startLocked(r *run) {
	e.running.Add(1)
	go e.execute(r)
}

func (e *Emulator) runPageURL(r *run) string {
	return fmt.Sprintf("%s/?o=%d#job/%d/run/%d", e.URL, workspaceID, r.jobID, r.id)
}

// workspaceID is the emulated workspace's id.
const workspaceID = 1234567890

// execute drives a run: waits for a concurrency slot when queued, starts
// tasks whose dependencies are done, skips those whose dependencies failed
// and ends the run when every task has ended.
func (e *Emulator) execute(r *run) {
	defer e.running.Done()
	closing := e.ctx.Done()
	for {
		e.mu.Lock()
		if r.terminal() {
			e.mu.Unlock()
			return
		}
		if r.queued && e.activeJobRunsLocked(r) < e.maxConcurrentLocked(r) {
			r.queued = false
		}
		if !r.queued {
			if r.start.IsZero() {
				r.start = time.Now()
				r.st = state{life: jobs.RunLifeCycleStateRunning}
			}
			if e.scheduleLocked(r) {
				e.mu.Unlock()
				e.wakeQueued(r.jobID)
				return
			}
		}
		e.mu.Unlock()
		select {
		case <-r.wake:
		case <-closing:
			closing = nil
			e.mu.Lock()
			e.cancelRunLocked(r, "The emulator is shutting down.")
			e.mu.Unlock()
		}
	}
}

// wakeQueued lets queued runs of a job re-check for a free slot.
func (e *Emulator) wakeQueued(jobID int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runs {
		if r.jobID == jobID && r.queued {
			r.signal()
		}
	}
}

func (e *Emulator) activeJobRunsLocked(r *run) int {
	n := 0
	for _, o := range e.runs {
		if o != r && o.jobID == r.jobID && o.runType == jobs.RunTypeJobRun && !o.terminal() && !o.queued {
			n++
		}
	}
	return n
}

func (e *Emulator) maxConcurrentLocked(r *run) int {
	if j, ok := e.jobs[r.jobID]; ok && j.settings.MaxConcurrentRuns > 0 {
		return j.settings.MaxConcurrentRuns
	}
	return 1
}

// scheduleLocked starts ready tasks and reports whether the run ended.
func (e *Emulator) scheduleLocked(r *run) bool {
	byKey := map[string]*taskRun{}
	for _, t := range r.tasks {
		byKey[t.spec.TaskKey] = t
	}
	for _, t := range r.tasks {
		if t.started || t.st.terminal() {
			continue
		}
		ready, upstream := true, jobs.RunResultStateSuccess
		for _, d := range t.spec.DependsOn {
			dt := byKey[d.TaskKey]
			if !dt.st.terminal() {
				ready = false
				break
			}
			switch dt.st.result {
			case jobs.RunResultStateSuccess:
			case jobs.RunResultStateCanceled, jobs.RunResultStateUpstreamCanceled:
				if upstream == jobs.RunResultStateSuccess {
					upstream = jobs.RunResultStateUpstreamCanceled
				}
			default:
				upstream = jobs.RunResultStateUpstreamFailed
			}
		}
		if !ready {
			continue
		}
		switch upstream {
		case jobs.RunResultStateUpstreamFailed:
			e.endTaskLocked(t, skipped(upstream, "Upstream task failed."))
		case jobs.RunResultStateUpstreamCanceled:
			e.endTaskLocked(t, skipped(upstream, "Upstream task was cancelled."))
		default:
			t.started = true
			t.start = time.Now()
			t.st = state{life: jobs.RunLifeCycleStatePending}
			ctx, cancel := context.WithCancel(r.ctx)
			t.cancel = cancel
			e.running.Add(1)
			go e.runTask(ctx, r, t)
		}
	}
	for _, t := range r.tasks {
		if !t.st.terminal() {
			return false
		}
	}
	e.endRunLocked(r)
	return true
}

func (e *Emulator) endTaskLocked(t *taskRun, s state) {
	t.st = s
	t.end = time.Now()
	if t.start.IsZero() {
		t.start = t.end
	}
	t.run.signal()
}

// endRunLocked derives the run's final state from its tasks.
func (e *Emulator) endRunLocked(r *run) {
	final := succeeded()
	rank := func(s state) int {
		switch {
		case s.life == jobs.RunLifeCycleStateInternalError:
			return 5
		case s.result == jobs.RunResultStateTimedout:
			return 4
		case s.result == jobs.RunResultStateFailed:
			return 3
		case s.result == jobs.RunResultStateCanceled:
			return 2
		case s.result == jobs.RunResultStateUpstreamFailed || s.result == jobs.RunResultStateUpstreamCanceled:
			return 1
		}
		return 0
	}
	for _, t := range r.tasks {
		if rank(t.st) > rank(final) {
			final = t.st
			if final.life == jobs.RunLifeCycleStateSkipped {
				final = failed(jobs.TerminationCodeCodeRunExecutionError, t.st.msg)
			}
		}
	}
	if final.result != jobs.RunResultStateSuccess && final.msg == "" {
		final.msg = "Task failed."
	}
	r.st = final
	r.end = time.Now()
	if r.start.IsZero() {
		r.start = r.end
	}
	r.stats.TerminatedAt = r.end
	if n := len(r.repairs); n > 0 {
		r.repairs[n-1].end = r.end
	}
	r.cancel()
}

// cancelRunLocked cancels every task of a run that has not ended.
func (e *Emulator) cancelRunLocked(r *run, msg string) {
	if r.terminal() {
		return
	}
	for _, t := range r.tasks {
		e.cancelTaskLocked(t, cancelled(msg))
	}
	if r.queued || !r.anyStarted() {
		// Nothing runs: the run ends now.
		for _, t := range r.tasks {
			if !t.st.terminal() {
				e.endTaskLocked(t, cancelled(msg))
			}
		}
		r.queued = false
		e.endRunLocked(r)
		r.st = cancelled(msg)
	}
	r.signal()
}

func (r *run) anyStarted() bool {
	return slices.ContainsFunc(r.tasks, func(t *taskRun) bool { return t.started })
}

// cancelTaskLocked stops a task: one that has not started ends at once, a
// running one goes TERMINATING until its process has exited.
func (e *Emulator) cancelTaskLocked(t *taskRun, s state) {
	if t.st.terminal() {
		return
	}
	if !t.started {
		e.endTaskLocked(t, s)
		return
	}
	if t.why == nil {
		t.why = &s
		t.st.life = jobs.RunLifeCycleStateTerminating
		t.cancel()
	}
}

func (e *Emulator) runsSubmit(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req jobs.SubmitRun
	if !decodeBytes(w, body, &req) {
		return
	}
	if sharedClusters(body) {
		badRequest(w, "Shared job cluster feature is not supported in runs/submit API.")
		return
	}
	if len(req.IdempotencyToken) > 64 {
		badRequest(w, "idempotency_token must be at most 64 characters, got %d", len(req.IdempotencyToken))
		return
	}
	if len(req.Tasks) == 0 {
		badRequest(w, "At least one task is required.")
		return
	}
	if req.TimeoutSeconds < 0 {
		badRequest(w, "timeout_seconds must not be negative")
		return
	}
	var tasks []jobs.Task
	if err := convert(req.Tasks, &tasks); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := validateTasks(tasks, req.Environments, req.GitSource); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if err := validateCompute(tasks, nil, true); err != nil {
		badRequest(w, "%v", err)
		return
	}
	name := req.RunName
	if name == "" {
		name = "Untitled"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok := req.IdempotencyToken; tok != "" {
		if id, ok := e.submitTokens[tok]; ok {
			writeJSON(w, jobs.SubmitRunResponse{RunId: id})
			return
		}
	}
	run := e.newRunLocked(jobs.RunTypeSubmitRun, 0, name, tasks, req.GitSource, req.Environments, req.TimeoutSeconds)
	if req.IdempotencyToken != "" {
		e.submitTokens[req.IdempotencyToken] = run.id
	}
	e.startLocked(run)
	writeJSON(w, jobs.SubmitRunResponse{RunId: run.id})
}

func (e *Emulator) jobsRunNow(w http.ResponseWriter, r *http.Request) {
	var req jobs.RunNow
	if !decode(w, r, &req) {
		return
	}
	if len(req.IdempotencyToken) > 64 {
		badRequest(w, "idempotency_token must be at most 64 characters")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[req.JobId]
	if !ok {
		jobNotExist(w, req.JobId)
		return
	}
	tokKey := fmt.Sprintf("%d/%s", j.id, req.IdempotencyToken)
	if req.IdempotencyToken != "" {
		if id, ok := e.runNowTokens[tokKey]; ok {
			writeJSON(w, jobs.RunNowResponse{RunId: id, NumberInJob: id})
			return
		}
	}
	s := j.settings
	tasks := s.Tasks
	if len(req.Only) > 0 {
		tasks = nil
		for _, key := range req.Only {
			i := slices.IndexFunc(s.Tasks, func(t jobs.Task) bool { return t.TaskKey == key })
			if i < 0 {
				badRequest(w, "only: task %q is not a task of job %d", key, j.id)
				return
			}
			t := s.Tasks[i]
			t.DependsOn = slices.DeleteFunc(slices.Clone(t.DependsOn), func(d jobs.TaskDependency) bool { return !slices.Contains(req.Only, d.TaskKey) })
			tasks = append(tasks, t)
		}
	}
	if len(tasks) == 0 {
		badRequest(w, "Job %d has no tasks to run.", j.id)
		return
	}
	params := map[string]string{}
	for _, p := range s.Parameters {
		params[p.Name] = p.Default
	}
	for k, v := range req.JobParameters {
		if _, ok := params[k]; !ok {
			badRequest(w, "Job parameter %q is not defined in job %d", k, j.id)
			return
		}
		params[k] = v
	}
	run := e.newRunLocked(jobs.RunTypeJobRun, j.id, s.Name, tasks, s.GitSource, s.Environments, s.TimeoutSeconds)
	run.params, run.notebookParams = params, req.NotebookParams
	run.number = run.id
	if req.IdempotencyToken != "" {
		e.runNowTokens[tokKey] = run.id
	}
	queue := s.Queue == nil || s.Queue.Enabled // Jobs 2.2 queues by default
	if req.Queue != nil {
		queue = req.Queue.Enabled
	}
	max := e.maxConcurrentLocked(run)
	if e.activeJobRunsLocked(run) >= max {
		if !queue {
			for _, t := range run.tasks {
				e.endTaskLocked(t, skipped(jobs.RunResultStateMaximumConcurrentRunsReached, "Skipped: the job already has its maximum number of concurrent runs."))
			}
			e.endRunLocked(run)
			run.st = state{life: jobs.RunLifeCycleStateSkipped, result: jobs.RunResultStateMaximumConcurrentRunsReached,
				ttype: jobs.TerminationTypeTypeClientError, tcode: jobs.TerminationCodeCodeMaxConcurrentRunsExceeded,
				msg: fmt.Sprintf("Skipped: job %d already has %d active run(s) and max_concurrent_runs is %d.", j.id, max, max)}
			writeJSON(w, jobs.RunNowResponse{RunId: run.id, NumberInJob: run.number})
			return
		}
		run.queued = true
		run.st = state{life: jobs.RunLifeCycleStateQueued, msg: "Queued: the job has reached its maximum number of concurrent runs."}
	}
	e.startLocked(run)
	writeJSON(w, jobs.RunNowResponse{RunId: run.id, NumberInJob: run.number})
}

func runNotExist(w http.ResponseWriter, id int64) {
	badRequest(w, "Run %d does not exist.", id)
}

func (e *Emulator) runID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, ok, err := queryInt(r, "run_id")
	if err != nil || !ok {
		badRequest(w, "run_id is required and must be an integer")
		return 0, false
	}
	return id, true
}

func (e *Emulator) renderTaskLocked(t *taskRun) jobs.RunTask {
	spec := t.spec
	nb := *spec.NotebookTask
	if t.params != nil {
		nb.BaseParameters = t.params
	}
	rt := jobs.RunTask{RunId: t.id, TaskKey: spec.TaskKey, NotebookTask: &nb, DependsOn: spec.DependsOn,
		State: t.st.legacy(), Status: t.st.status(), ExistingClusterId: spec.ExistingClusterId, NewCluster: spec.NewCluster,
		EnvironmentKey: spec.EnvironmentKey, TimeoutSeconds: spec.TimeoutSeconds, RunIf: spec.RunIf,
		RunPageUrl: fmt.Sprintf("%s/?o=%d#job/%d/run/%d", e.URL, workspaceID, t.run.jobID, t.id)}
	if t.run.git != nil && (nb.Source == jobs.SourceGit || nb.Source == "") {
		rt.GitSource = t.run.git
	}
	if !t.start.IsZero() {
		rt.StartTime = t.start.UnixMilli()
	}
	if !t.end.IsZero() {
		rt.EndTime = t.end.UnixMilli()
		rt.RunDuration = t.end.Sub(t.start).Milliseconds()
	}
	return rt
}

// liveState is a run's state as clients see it: a started run is PENDING
// until one of its tasks runs (compute is starting), then RUNNING.
func (r *run) liveState() state {
	if r.terminal() || r.queued || r.st.life != jobs.RunLifeCycleStateRunning {
		return r.st
	}
	for _, t := range r.tasks {
		switch t.st.life {
		case jobs.RunLifeCycleStateRunning, jobs.RunLifeCycleStateTerminating:
			return r.st
		}
		if t.st.terminal() && t.started {
			return r.st
		}
	}
	return state{life: jobs.RunLifeCycleStatePending}
}

func (e *Emulator) renderRunLocked(r *run) jobs.Run {
	st := r.liveState()
	out := jobs.Run{RunId: r.id, JobId: r.jobID, RunName: r.name, RunType: r.runType, Trigger: r.trigger,
		RunPageUrl: e.runPageURL(r), State: st.legacy(), Status: st.status(), GitSource: r.git,
		CreatorUserName: creator, NumberInJob: r.number, OriginalAttemptRunId: r.id, RepairHistory: r.history()}
	if !r.start.IsZero() {
		out.StartTime = r.start.UnixMilli()
	} else {
		out.StartTime = r.created.UnixMilli()
	}
	if !r.end.IsZero() {
		out.EndTime = r.end.UnixMilli()
		out.RunDuration = r.end.Sub(r.created).Milliseconds()
	}
	for k, v := range r.params {
		out.JobParameters = append(out.JobParameters, jobs.JobParameter{Name: k, Value: v})
	}
	slices.SortFunc(out.JobParameters, func(a, b jobs.JobParameter) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	for _, t := range r.tasks {
		out.Tasks = append(out.Tasks, e.renderTaskLocked(t))
	}
	return out
}

// taskAsRunLocked renders a task run as runs/get shows a task run id.
func (e *Emulator) taskAsRunLocked(t *taskRun) jobs.Run {
	rt := e.renderTaskLocked(t)
	return jobs.Run{RunId: t.id, JobId: t.run.jobID, JobRunId: t.run.id, RunName: t.spec.TaskKey, RunType: jobs.RunTypeSubmitRun,
		RunPageUrl: rt.RunPageUrl, State: rt.State, Status: rt.Status, StartTime: rt.StartTime, EndTime: rt.EndTime,
		Tasks: []jobs.RunTask{rt}, CreatorUserName: creator}
}

func (e *Emulator) runsGet(w http.ResponseWriter, r *http.Request) {
	id, ok := e.runID(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if run, ok := e.runs[id]; ok {
		run.stats.Gets = append(run.stats.Gets, now)
		if run.terminal() && run.stats.FirstSeenTerminated.IsZero() {
			run.stats.FirstSeenTerminated = now
		}
		out := e.renderRunLocked(run)
		if r.URL.Query().Get("include_history") != "true" {
			out.RepairHistory = nil
		}
		writeJSON(w, out)
		return
	}
	if t, ok := e.tasks[id]; ok {
		t.run.stats.Gets = append(t.run.stats.Gets, now)
		writeJSON(w, e.taskAsRunLocked(t))
		return
	}
	runNotExist(w, id)
}

func (e *Emulator) runsGetOutput(w http.ResponseWriter, r *http.Request) {
	id, ok := e.runID(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tasks[id]
	if !ok {
		run, isRun := e.runs[id]
		if !isRun {
			runNotExist(w, id)
			return
		}
		if len(run.tasks) != 1 {
			badRequest(w, "Retrieving the output of runs with multiple tasks is not supported. Please retrieve the output of each individual task run instead.")
			return
		}
		t = run.tasks[0]
	}
	md := e.taskAsRunLocked(t)
	out := jobs.RunOutput{Metadata: &md}
	if t.st.terminal() {
		if t.exitValue != "" || t.st.result == jobs.RunResultStateSuccess {
			if t.exitValue != "" {
				out.NotebookOutput = &jobs.NotebookOutput{Result: t.exitValue, Truncated: t.truncated}
			}
		}
		out.Error, out.ErrorTrace = t.errMsg, t.errTrace
	}
	writeJSON(w, out)
}

func (e *Emulator) runsCancel(w http.ResponseWriter, r *http.Request) {
	var req jobs.CancelRun
	if !decode(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if run, ok := e.runs[req.RunId]; ok {
		e.cancelRunLocked(run, "Run cancelled.")
		writeJSON(w, struct{}{})
		return
	}
	if t, ok := e.tasks[req.RunId]; ok {
		e.cancelTaskLocked(t, cancelled("Run cancelled."))
		t.run.signal()
		writeJSON(w, struct{}{})
		return
	}
	runNotExist(w, req.RunId)
}

// TaskRunInfo is one task run as the emulator saw it: repaired tasks keep
// their earlier task runs here (runs/get shows only the latest).
type TaskRunInfo struct {
	RunID, TaskRunID int64
	TaskKey          string
	// Started is whether it was started (its dependencies were met).
	Started bool
	// Life and Result are its state now (Result empty until it ends).
	Life   jobs.RunLifeCycleState
	Result jobs.RunResultState
}

// TaskRuns returns every task run of every run, oldest first, superseded
// ones included.
func (e *Emulator) TaskRuns() []TaskRunInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []TaskRunInfo
	for _, t := range e.tasks {
		out = append(out, TaskRunInfo{RunID: t.run.id, TaskRunID: t.id, TaskKey: t.spec.TaskKey, Started: t.started,
			Life: t.st.life, Result: t.st.result})
	}
	slices.SortFunc(out, func(a, b TaskRunInfo) int { return int(a.TaskRunID - b.TaskRunID) })
	return out
}
