package databricks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
)

var _ executor.GroupRunner = (*Executor)(nil)

// CanRunGroups implements executor.GroupRunner.
func (e *Executor) CanRunGroups() bool { return true }

// unitName names a Databricks run as a group's unit.
func unitName(runID int64) string { return fmt.Sprintf("databricks run %d", runID) }

func parseUnit(u string) (int64, bool) {
	var id int64
	if _, err := fmt.Sscanf(u, "databricks run %d", &id); err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// taskValueRef is the dynamic value reference to an upstream task's value:
// the notebooks set a task value per output (docs/STAGES.md), and
// Databricks substitutes it when the downstream task starts.
func taskValueRef(stage, output string) string {
	return "{{tasks." + stage + ".values." + output + "}}"
}

// groupSubmit is the one-time run of a group: a task per stage, depends_on
// from the group's needs, upstream outputs as task value references, the
// target's compute (serverless: one environment for every task).
func groupSubmit(cfg *Config, loc codeLocation, reqs []string, g executor.Group, commit string) (jobs.SubmitRun, error) {
	var tasks []jobs.SubmitTask
	first := g.Stages[0].Task
	for _, s := range g.Stages {
		t := s.Task
		t.GitCommit = commit
		t.Params = maps.Clone(t.Params)
		for k, v := range t.Params {
			t.Params[k] = executor.ExpandOutputRefs(v, taskValueRef)
		}
		st, err := stageTask(cfg, loc, reqs, t)
		if err != nil {
			return jobs.SubmitRun{}, err
		}
		for _, need := range slices.Sorted(slices.Values(s.Needs)) {
			st.DependsOn = append(st.DependsOn, jobs.TaskDependency{TaskKey: need})
		}
		tasks = append(tasks, st)
	}
	return jobs.SubmitRun{
		RunName:          cfg.NamePrefix() + fmt.Sprintf("pipectl %s on %s, run %s: %d stages", first.Pipeline, first.Target, first.RunID, len(tasks)),
		Tasks:            tasks,
		GitSource:        loc.gitSource(),
		Environments:     NewComputeSpec(cfg, reqs).Environments(),
		IdempotencyToken: groupToken(g, 0),
		Queue:            &jobs.QueueSettings{Enabled: true},
	}, nil
}

// groupToken is the idempotency token of a group's submit: its pipectl run,
// stages and attempts, each attempt shifted by delta (-1: the token the
// previous attempts of the same stages submitted with).
func groupToken(g executor.Group, delta int) string {
	var names []string
	for _, s := range g.Stages {
		names = append(names, fmt.Sprintf("%s#%d", s.Task.Stage, s.Task.Attempt+delta))
	}
	sum := sha256.Sum256([]byte("pipectl-group|" + g.Stages[0].Task.RunID + "|" + strings.Join(names, ",")))
	return hex.EncodeToString(sum[:])[:64]
}

// RunGroup implements executor.GroupRunner: one runs/submit holding every
// stage of the group, or, on a resume, jobs/runs/repair of the run in
// which they failed (rerun_tasks: the group's stages, with their
// dependants); then it follows the run task by task.
func (e *Executor) RunGroup(ctx context.Context, g executor.Group, sink executor.GroupSink) (executor.GroupResult, error) {
	out := executor.GroupResult{Results: map[string]executor.Result{}}
	if len(g.Stages) == 0 {
		return out, nil
	}
	first := g.Stages[0].Task
	failAll := func(r executor.Result) (executor.GroupResult, error) {
		for _, s := range g.Stages {
			out.Results[s.Task.Stage] = r
		}
		return out, nil
	}
	emitTo := func(stage string, kind executor.EventKind, text string) {
		if red := e.redactorFor(first.Config); red != nil {
			text = red.String(text)
		}
		sink(stage, executor.Event{Time: time.Now(), Kind: kind, Stream: "stderr", Text: text}, nil)
	}
	emitAll := func(kind executor.EventKind, text string) {
		for _, s := range g.Stages {
			emitTo(s.Task.Stage, kind, text)
		}
	}
	var notebooks []string
	for _, s := range g.Stages {
		notebooks = append(notebooks, s.Task.Notebook)
	}
	// The preparation is the group's, reported once (in the first stage's
	// log); retry notices go to every stage.
	emitFirst := func(kind executor.EventKind, text string) { emitTo(first.Stage, kind, text) }
	pr, bad := e.prepare(ctx, first, notebooks, func(kind executor.EventKind, text string) {
		if strings.HasPrefix(text, "databricks: the workspace answered") {
			emitAll(kind, text)
		} else {
			emitFirst(kind, text)
		}
	})
	if bad != nil {
		return failAll(*bad)
	}
	ctx, cfg, c, loc, reqs, commit := pr.ctx, pr.cfg, pr.c, pr.loc, pr.reqs, pr.commit
	sub, err := groupSubmit(cfg, loc, reqs, g, commit)
	if err != nil {
		return failAll(failure("%v", err))
	}

	runID, old, how := int64(0), map[int64]bool{}, ""
	id, ok := parseUnit(g.Repair)
	if !ok && g.Interrupted {
		// pipectl died before it learned the run its previous attempts
		// submitted (the answer to runs/submit was lost with it): the
		// same idempotency token returns that run if it exists, else
		// starts this one.
		prev := sub
		prev.IdempotencyToken = groupToken(g, -1)
		resp, err := c.W.Jobs.Submit(ctx, prev)
		switch {
		case err != nil && ctx.Err() != nil:
			// Cancelled meanwhile: the run may have started (its answer
			// lost again); the same token finds it, to cancel it.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitAfterCancel)
			if resp, err := c.W.Jobs.Submit(sctx, prev); err == nil {
				e.cancelQuietly(ctx, c, resp.RunId, e.poll())
			}
			cancel()
			return failAll(executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled before the run was submitted"}})
		case err != nil:
			return failAll(e.apiFailure(c, "submit the run", err))
		}
		id, ok = resp.RunId, true
		emitAll(executor.EventLog, fmt.Sprintf("databricks: run %d has the idempotency token of the interrupted attempts", id))
	}
	if ok {
		var why string
		runID, old, why, err = e.repair(ctx, c, id, sub, g.Interrupted, emitAll)
		switch {
		case err != nil && ctx.Err() != nil:
			return failAll(executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled before the run was repaired"}})
		case err != nil:
			return failAll(e.apiFailure(c, fmt.Sprintf("repair run %d", id), err))
		case runID == 0:
			emitAll(executor.EventLog, fmt.Sprintf("databricks: not repairing run %d (%s); submitting a new run", id, why))
		default:
			how = why
		}
	}
	if runID == 0 {
		resp, err := c.W.Jobs.Submit(ctx, sub)
		if err != nil && ctx.Err() != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitAfterCancel)
			resp, err = c.W.Jobs.Submit(sctx, sub)
			cancel()
			if err != nil {
				return failAll(executor.Result{Status: executor.Cancelled, Error: &executor.Failure{
					Message: fmt.Sprintf("cancelled before the run was submitted (last error: %v)", c.red.err(err))}})
			}
		}
		if err != nil {
			return failAll(e.apiFailure(c, "submit the run", err))
		}
		runID, how = resp.RunId, fmt.Sprintf("submitted run %d with %d tasks", resp.RunId, len(sub.Tasks))
	}
	out.Unit = unitName(runID)
	sink("", executor.Event{Time: time.Now(), Kind: executor.EventUnit, Text: out.Unit}, nil)
	emitAll(executor.EventLog, "databricks: "+how)
	e.followGroup(ctx, c, g, runID, old, sink, emitTo, out.Results)
	return out, nil
}

// upstreamRef finds the task a task value reference reads.
var upstreamRef = regexp.MustCompile(`\{\{\s*tasks\.([\w-]+)\.values\.[\w-]+\s*\}\}`)

// repair re-runs the group's stages inside run id when that run can take
// them: each stage is a task of it with the notebook and the parameters
// this group would submit (a parameter the run wires from a task value is
// not compared: the upstream task's value is the output pipectl recorded).
// When the stages' last attempts were interrupted (pipectl died while the
// run went on), a run still active is followed as it is, and the stages
// whose tasks succeeded in it are taken as they are, not run again;
// otherwise a run still active is cancelled first. It returns the run id
// and what it does (0 with why when it does not repair) and the task runs
// not to follow (those a repair replaces).
func (e *Executor) repair(ctx context.Context, c *Client, id int64, sub jobs.SubmitRun, interrupted bool,
	emit func(executor.EventKind, string)) (int64, map[int64]bool, string, error) {
	run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id, IncludeHistory: true})
	if err != nil {
		if ctx.Err() == nil && !transient(err) {
			return 0, nil, c.red.err(err).Error(), nil
		}
		return 0, nil, "", err
	}
	have := map[string]jobs.RunTask{}
	for _, t := range run.Tasks {
		have[t.TaskKey] = t
	}
	why := compatible(run, have, sub)
	st := statusOf(run)
	if !st.terminal && (!interrupted || why != "") {
		// The session that started it died (the resume holds the run's
		// lock): nobody follows it. Stop it, then repair what it left.
		emit(executor.EventLog, fmt.Sprintf("databricks: run %d is still %s, left by the interrupted session; cancelling it", id, st.label))
		if err := e.cancelAndWait(ctx, c, id, e.poll()); err != nil {
			return 0, nil, "", err
		}
		if run, err = c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id, IncludeHistory: true}); err != nil {
			return 0, nil, "", err
		}
		for _, t := range run.Tasks {
			have[t.TaskKey] = t
		}
		st = statusOf(run)
	}
	if why != "" {
		return 0, nil, why, nil
	}
	if !st.terminal {
		return id, map[int64]bool{}, fmt.Sprintf("following run %d, still %s: the interrupted session started it", id, st.label), nil
	}
	var keys, kept []string
	old := map[int64]bool{}
	for _, want := range sub.Tasks {
		t := have[want.TaskKey]
		if interrupted && judge(&jobs.Run{Status: t.Status, State: t.State}).ok {
			kept = append(kept, want.TaskKey) // succeeded unseen: take its result
			continue
		}
		old[t.RunId] = true
		keys = append(keys, want.TaskKey)
	}
	if len(keys) == 0 {
		if !interrupted {
			return 0, nil, "it succeeded", nil
		}
		return id, map[int64]bool{}, fmt.Sprintf("run %d has ended: taking the results of its tasks", id), nil
	}
	if !interrupted && judge(run).ok {
		return 0, nil, "it succeeded", nil
	}
	req := jobs.RepairRun{RunId: id, RerunTasks: keys, RerunDependentTasks: true}
	for _, h := range run.RepairHistory {
		if h.Type == jobs.RepairHistoryItemTypeRepair && h.Id > req.LatestRepairId {
			req.LatestRepairId = h.Id
		}
	}
	if _, err := c.W.Jobs.RepairRun(ctx, req); err != nil {
		return 0, nil, "", err
	}
	how := fmt.Sprintf("repairing run %d", id)
	if len(kept) > 0 {
		how += fmt.Sprintf(" (%s succeeded in it: not run again)", strings.Join(kept, ", "))
	}
	return id, old, how, nil
}

// compatible says why run cannot take the group's stages (empty when it
// can): a stage is not a task of it, or its notebook or a parameter
// changed, or it reads a task value of a task that did not succeed in it
// and does not run again.
func compatible(run *jobs.Run, have map[string]jobs.RunTask, sub jobs.SubmitRun) string {
	members := map[string]bool{}
	for _, want := range sub.Tasks {
		members[want.TaskKey] = true
	}
	for _, want := range sub.Tasks {
		t, ok := have[want.TaskKey]
		if !ok || t.NotebookTask == nil || want.NotebookTask == nil {
			return "stage " + want.TaskKey + " is not a task of it"
		}
		if t.NotebookTask.NotebookPath != want.NotebookTask.NotebookPath {
			return "the notebook of stage " + want.TaskKey + " changed"
		}
		for k, v := range want.NotebookTask.BaseParameters {
			was, ok := t.NotebookTask.BaseParameters[k]
			if strings.Contains(was, "{{") {
				// Wired from a task value: the upstream task must run
				// again in the repair or have succeeded in the run.
				for _, m := range upstreamRef.FindAllStringSubmatch(was, -1) {
					if up, ok := have[m[1]]; !members[m[1]] && (!ok || !judge(&jobs.Run{Status: up.Status, State: up.State}).ok) {
						return fmt.Sprintf("stage %s reads task %s, which did not succeed in it", want.TaskKey, m[1])
					}
				}
				continue
			}
			if strings.Contains(v, "{{") {
				continue
			}
			if !ok || was != v {
				return fmt.Sprintf("parameter %s of stage %s changed", k, want.TaskKey)
			}
		}
	}
	return ""
}

// followGroup polls a group's run until every stage's task has ended,
// streaming each task's state to its stage and each result as soon as the
// task ends. Task runs in old are from before a repair: not the ones
// followed. On ctx's end it cancels the whole run.
func (e *Executor) followGroup(ctx context.Context, c *Client, g executor.Group, runID int64, old map[int64]bool,
	sink executor.GroupSink, emitTo func(string, executor.EventKind, string), results map[string]executor.Result) {
	p := e.poll()
	tasks := map[string]executor.Task{}
	for _, s := range g.Stages {
		tasks[s.Task.Stage] = s.Task
	}
	last, started, linked := map[string]string{}, map[string]bool{}, map[string]int64{}
	var pageURL string
	var failingSince time.Time
	settle := func(r executor.Result) {
		for k := range tasks {
			if _, ok := results[k]; !ok {
				results[k] = r
			}
		}
	}
	for n := 0; ; n++ {
		if n > 0 {
			timer := time.NewTimer(p.interval(n - 1))
			select {
			case <-ctx.Done():
				timer.Stop()
				settle(e.stop(ctx, c, executor.Task{Stage: "group"}, runID, pageURL, func(k executor.EventKind, s string) {
					for st := range tasks {
						emitTo(st, k, s)
					}
				}))
				return
			case <-timer.C:
			}
		}
		run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: runID})
		if err != nil {
			if ctx.Err() != nil {
				continue // cancelled: the select above stops the run
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if !transient(err) || time.Since(failingSince) > p.ErrorBudget {
				e.cancelQuietly(ctx, c, runID, p)
				settle(e.apiFailure(c, fmt.Sprintf("follow run %d", runID), err))
				return
			}
			continue
		}
		failingSince = time.Time{}
		if pageURL == "" {
			pageURL = run.RunPageUrl
		}
		seen := map[string]bool{}
		for i := range run.Tasks {
			t := &run.Tasks[i]
			task, ok := tasks[t.TaskKey]
			if !ok || old[t.RunId] {
				continue
			}
			seen[t.TaskKey] = true
			if _, done := results[t.TaskKey]; done {
				continue
			}
			if linked[t.TaskKey] != t.RunId && t.RunPageUrl != "" {
				// Each stage links to its task run's page.
				linked[t.TaskKey] = t.RunId
				sink(t.TaskKey, executor.Event{Time: time.Now(), Kind: executor.EventLink,
					Link: &executor.Link{Label: fmt.Sprintf("Databricks run %d, task run %d", runID, t.RunId), URL: t.RunPageUrl}}, nil)
			}
			st := statusOf(&jobs.Run{Status: t.Status, State: t.State})
			if st.label != last[t.TaskKey] {
				last[t.TaskKey] = st.label
				emitTo(t.TaskKey, executor.EventProgress, fmt.Sprintf("databricks: run %d task %s %s", runID, t.TaskKey, st.label))
			}
			if !started[t.TaskKey] && (strings.HasPrefix(st.label, "RUNNING") || (st.terminal && t.StartTime > 0)) {
				started[t.TaskKey] = true
				at := time.Now()
				if t.StartTime > 0 {
					at = time.UnixMilli(t.StartTime) // when the task started, compute start-up included
				}
				sink(t.TaskKey, executor.Event{Time: at, Kind: executor.EventStarted}, nil)
			}
			if !st.terminal {
				continue
			}
			tr := &jobs.Run{RunId: t.RunId, Status: t.Status, State: t.State, Tasks: []jobs.RunTask{*t}}
			res := e.finish(ctx, c, task, tr, t.RunPageUrl, func(k executor.EventKind, s string) { emitTo(task.Stage, k, s) })
			res.Links = nil
			if t.RunPageUrl != "" {
				res.Links = []executor.Link{{Label: fmt.Sprintf("Databricks run %d, task run %d", runID, t.RunId), URL: t.RunPageUrl}}
			}
			if res.Error != nil {
				res.Error.Message = strings.Replace(res.Error.Message, fmt.Sprintf("Databricks run %d", t.RunId),
					fmt.Sprintf("Databricks run %d (task run %d)", runID, t.RunId), 1)
			}
			results[t.TaskKey] = res
			r := res
			sink(t.TaskKey, executor.Event{Time: time.Now()}, &r)
		}
		if len(results) == len(tasks) {
			return
		}
		if statusOf(run).terminal && len(old) == 0 {
			var missing []string
			for k := range tasks {
				if !seen[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) > 0 {
				settle(failure("Databricks run %d ended without running stage(s) %s", runID, strings.Join(slices.Sorted(slices.Values(missing)), ", ")))
				return
			}
		}
	}
}
