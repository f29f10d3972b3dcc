package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// repair is one jobs/runs/repair of a run.
type repair struct {
	id         int64
	start, end time.Time
	taskRunIDs []int64
}

// history renders the run's repair_history: the original run, then each
// repair with the task runs it started.
func (r *run) history() []jobs.RepairHistoryItem {
	if len(r.repairs) == 0 {
		return nil
	}
	orig := jobs.RepairHistoryItem{Type: jobs.RepairHistoryItemTypeOriginal, Id: r.id, StartTime: r.created.UnixMilli()}
	out := []jobs.RepairHistoryItem{orig}
	for _, rp := range r.repairs {
		item := jobs.RepairHistoryItem{Type: jobs.RepairHistoryItemTypeRepair, Id: rp.id, StartTime: rp.start.UnixMilli(),
			TaskRunIds: slices.Clone(rp.taskRunIDs)}
		if !rp.end.IsZero() {
			item.EndTime = rp.end.UnixMilli()
		}
		out = append(out, item)
	}
	return out
}

// sharedClusters reports whether a runs/submit body uses job clusters,
// which one-time runs do not support.
func sharedClusters(body []byte) bool {
	var raw struct {
		JobClusters json.RawMessage `json:"job_clusters"`
		Tasks       []struct {
			JobClusterKey string `json:"job_cluster_key"`
		} `json:"tasks"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return false
	}
	if len(raw.JobClusters) > 0 && string(raw.JobClusters) != "null" {
		return true
	}
	return slices.ContainsFunc(raw.Tasks, func(t struct {
		JobClusterKey string `json:"job_cluster_key"`
	}) bool {
		return t.JobClusterKey != ""
	})
}

// computeWait is how long a task waits for its compute to start
// (Options.ComputeStartup): the first task on a compute starts it, the
// others wait for the same moment.
func (e *Emulator) computeWait(r *run, t *taskRun) time.Duration {
	if e.opts.ComputeStartup <= 0 {
		return 0
	}
	var key string
	switch s := t.spec; {
	case s.ExistingClusterId != "":
		return 0
	case s.NewCluster != nil:
		key = "task:" + s.TaskKey
	default:
		key = "env:" + s.EnvironmentKey
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.computeReady == nil {
		r.computeReady = map[string]time.Time{}
	}
	ready, ok := r.computeReady[key]
	if !ok {
		ready = time.Now().Add(e.opts.ComputeStartup)
		r.computeReady[key] = ready
	}
	return time.Until(ready)
}

// runsRepair re-runs tasks of an ended run inside it: the tasks named in
// rerun_tasks (or every task that did not succeed, with
// rerun_all_failed_tasks) and, with rerun_dependent_tasks, every task
// downstream of them. The other tasks keep their state and task values,
// which the re-run tasks read.
func (e *Emulator) runsRepair(w http.ResponseWriter, r *http.Request) {
	var req jobs.RepairRun
	if !decode(w, r, &req) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	run, ok := e.runs[req.RunId]
	if !ok {
		runNotExist(w, req.RunId)
		return
	}
	if !run.terminal() {
		writeError(w, http.StatusBadRequest, "INVALID_STATE", "Run is in progress and cannot be repaired. Wait for the run to finish.")
		return
	}
	if len(req.RerunTasks) > 0 && req.RerunAllFailedTasks {
		badRequest(w, "Only one of rerun_tasks or rerun_all_failed_tasks can be used.")
		return
	}
	if len(req.RerunTasks) == 0 && !req.RerunAllFailedTasks {
		badRequest(w, "One of rerun_tasks or rerun_all_failed_tasks must be given.")
		return
	}
	if n := len(run.repairs); n > 0 && req.LatestRepairId != run.repairs[n-1].id {
		badRequest(w, "The latest_repair_id %d does not match the latest repair of run %d (%d).", req.LatestRepairId, run.id, run.repairs[n-1].id)
		return
	}
	byKey := map[string]*taskRun{}
	for _, t := range run.tasks {
		byKey[t.spec.TaskKey] = t
	}
	rerun := map[string]bool{}
	for _, k := range req.RerunTasks {
		if byKey[k] == nil {
			badRequest(w, "Task %q is not a task of run %d.", k, run.id)
			return
		}
		rerun[k] = true
	}
	if req.RerunAllFailedTasks {
		for _, t := range run.tasks {
			if t.st.result != jobs.RunResultStateSuccess {
				rerun[t.spec.TaskKey] = true
			}
		}
	}
	if req.RerunDependentTasks {
		for changed := true; changed; {
			changed = false
			for _, t := range run.tasks {
				if rerun[t.spec.TaskKey] {
					continue
				}
				for _, d := range t.spec.DependsOn {
					if rerun[d.TaskKey] {
						rerun[t.spec.TaskKey], changed = true, true
						break
					}
				}
			}
		}
	}
	rp := repair{id: e.id(), start: time.Now()}
	for i, t := range run.tasks {
		if !rerun[t.spec.TaskKey] {
			continue
		}
		nt := &taskRun{id: e.id(), run: run, spec: t.spec, st: state{life: jobs.RunLifeCycleStatePending}}
		if len(t.spec.DependsOn) > 0 {
			nt.st.life = jobs.RunLifeCycleStateBlocked
		}
		run.tasks[i] = nt
		e.tasks[nt.id] = nt
		rp.taskRunIDs = append(rp.taskRunIDs, nt.id)
	}
	run.repairs = append(run.repairs, rp)
	run.ctx, run.cancel = context.WithCancel(e.ctx)
	run.st = state{life: jobs.RunLifeCycleStateRunning}
	run.end = time.Time{}
	run.computeReady = nil
	e.startLocked(run)
	writeJSON(w, jobs.RepairRunResponse{RepairId: rp.id})
}
