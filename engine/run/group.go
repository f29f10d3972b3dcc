package run

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/engine/secret"
	"github.com/pipectl/pipectl/engine/spec"
)

// A group is stages of one executor that run as one unit
// (executor.GroupRunner): the ready stages of that executor and the pending
// ones whose needs are all done or in the group. A group takes one slot of
// --parallelism. Stages with retries run alone (the runner retries
// attempts; a unit is not retried stage by stage).

// group is a group being formed or run.
type group struct {
	executor string
	members  []string
	// repair is the unit a resume repairs (executor.Group.Repair).
	repair string
	// interrupted: every member's last attempt was interrupted
	// (executor.Group.Interrupted).
	interrupted bool
}

// canGroup reports whether an executor runs groups, asking it once.
func (e *execution) canGroup(ctx context.Context, name string) bool {
	e.mu.Lock()
	v, ok := e.groupCap[name]
	e.mu.Unlock()
	if ok {
		return v
	}
	ex, err := e.r.Open(ctx, name)
	gr, isGR := ex.(executor.GroupRunner)
	v = err == nil && isGR && gr.CanRunGroups()
	e.mu.Lock()
	e.groupCap[name] = v
	e.mu.Unlock()
	return v
}

func groupable(st *plan.Stage) bool { return st.Retries == 0 }

// formGroup returns the group a ready stage starts, or nil when it runs
// alone: its executor cannot run groups, it has retries, or nothing else
// would join it (and there is no unit to repair).
// note, when set, says why a stage of an executor that runs groups runs
// alone.
func (e *execution) formGroup(ctx context.Context, name string, running map[string]bool) (g *group, note string) {
	pl := e.r.Plan
	st := pl.Stages[name]
	if !e.canGroup(ctx, st.Executor) {
		return nil, ""
	}
	if !groupable(st) {
		return nil, fmt.Sprintf("runs alone, not in one %s run with other stages: it has retries, which pipectl makes as new attempts", st.Executor)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	g = &group{executor: st.Executor}
	in := map[string]bool{}
	for _, n := range e.rec.Order {
		rs, ps := e.rec.Stages[n], pl.Stages[n]
		if running[n] || rs.Status != record.Pending || ps.Executor != g.executor || !groupable(ps) {
			continue
		}
		ok := true
		for _, need := range rs.Needs {
			if !e.rec.Stages[need].Status.Done() && !in[need] {
				ok = false
				break
			}
		}
		if ok {
			in[n] = true
			g.members = append(g.members, n)
		}
	}
	if e.p.resume != nil {
		g.repair = e.commonUnit(g.members)
		g.interrupted = e.interruptedTogether(g.members, g.repair)
	}
	if len(g.members) < 2 && g.repair == "" {
		return nil, ""
	}
	return g, ""
}

// commonUnit is the unit the last attempts of members ran in, when they all
// (those that ran) ran in the same one; callers hold e.mu.
func (e *execution) commonUnit(members []string) string {
	unit := ""
	for _, n := range members {
		as := e.rec.Stages[n].Attempts
		if len(as) == 0 {
			continue
		}
		u := as[len(as)-1].Unit
		if u == "" || (unit != "" && u != unit) {
			return ""
		}
		unit = u
	}
	return unit
}

// interruptedTogether reports whether every member's last attempt was
// interrupted in unit (none known: every such attempt has no unit), as
// when pipectl died while they ran as one unit; callers hold e.mu.
func (e *execution) interruptedTogether(members []string, unit string) bool {
	for _, n := range members {
		as := e.rec.Stages[n].Attempts
		if len(as) == 0 || as[len(as)-1].Status != record.Interrupted || as[len(as)-1].Unit != unit {
			return false
		}
	}
	return len(members) > 0
}

// slots counts what --parallelism bounds: single stages and groups.
func slots(running map[string]bool, groupOf map[string]*group) int {
	n := 0
	seen := map[*group]bool{}
	for name := range running {
		g := groupOf[name]
		if g == nil {
			n++
		} else if !seen[g] {
			seen[g] = true
			n++
		}
	}
	return n
}

// member is a stage of a group that runs in the unit.
type member struct {
	name string
	st   *plan.Stage
	d    *Decision
	log  *record.Log
	n    int
	// inUnit are the needs that run in the same unit.
	inUnit []string
	done   bool
}

// runGroup runs a group and sends exactly one stageDone per member to done:
// cached members at once, the others as the unit reports them.
func (e *execution) runGroup(ctx context.Context, g *group, done chan<- stageDone) {
	r := e.r
	e.mu.Lock()
	outputs := maps.Clone(e.outputs)
	runID := e.rec.ID
	e.mu.Unlock()
	var outMu sync.Mutex // guards outputs once the unit runs

	bad := map[string]string{} // member -> why its dependants cannot run
	unit := map[string]bool{}
	var runs []*member
	for _, name := range g.members {
		st := r.Plan.Stages[name]
		var upBad, upUnit []string
		for _, need := range st.Needs {
			if why, ok := bad[need]; ok && why != "" {
				upBad = append(upBad, need)
			}
			if unit[need] {
				upUnit = append(upUnit, need)
			}
		}
		if len(upBad) > 0 {
			reason := fmt.Sprintf("upstream %s %s", upBad[0], bad[upBad[0]])
			bad[name] = bad[upBad[0]]
			done <- stageDone{name: name, status: record.Skipped, reason: reason}
			continue
		}
		var d *Decision
		if len(upUnit) == 0 {
			if ctx.Err() != nil {
				bad[name] = string(record.Cancelled)
				done <- stageDone{name: name, status: record.Cancelled}
				continue
			}
			params, err := r.render(st, outputs, runID, e.date)
			if err != nil {
				bad[name] = string(record.Failed)
				done <- stageDone{name: name, status: record.Failed, failure: &executor.Failure{
					Message: fmt.Sprintf("cannot substitute parameters: %v", err)}}
				continue
			}
			d = r.decide(ctx, st, params, decideOpts{forced: e.p.forced[name], noCache: e.p.opts.NoCache})
			if d.Action == ActRun {
				d.Reasons = e.p.resumeReasons(name, d.Reasons)
			}
			if d.Action == ActCached {
				outputs[name] = d.Outputs
				done <- stageDone{name: name, status: record.Cached, decision: d}
				continue
			}
		} else {
			params, err := st.RenderParams(func(ref spec.Ref) (string, bool) {
				switch {
				case ref.Run == "id":
					return runID, true
				case ref.Run == "date":
					return e.date, true
				case unit[ref.Stage]:
					return executor.OutputRef(ref.Stage, ref.Output), true
				}
				v, ok := outputs[ref.Stage][ref.Output]
				return v, ok
			})
			if err != nil {
				bad[name] = string(record.Failed)
				done <- stageDone{name: name, status: record.Failed, failure: &executor.Failure{
					Message: fmt.Sprintf("cannot substitute parameters: %v", err)}}
				continue
			}
			// The key needs the upstream outputs: it is made when the
			// stage has run (finishMember).
			d = &Decision{Stage: name, Action: ActRun, Params: params,
				Reasons: []string{fmt.Sprintf("upstream %s runs in the same group", strings.Join(upUnit, ", "))}}
		}
		log, err := r.Records.OpenLog(runID, name)
		if err != nil {
			bad[name] = string(record.Failed)
			done <- stageDone{name: name, status: record.Failed, decision: d, failure: &executor.Failure{Message: "cannot open the stage log: " + err.Error()}}
			continue
		}
		defer log.Close()
		log.Redact(secret.Values(d.Params))
		unit[name] = true
		runs = append(runs, &member{name: name, st: st, d: d, log: log, inUnit: upUnit})
	}
	if len(runs) == 0 {
		return
	}

	// Start an attempt of every member.
	req := executor.Group{Repair: g.repair, Interrupted: g.interrupted}
	byName := map[string]*member{}
	started := r.now()
	for _, m := range runs {
		byName[m.name] = m
		e.update(func(rec *record.Run) {
			rs := rec.Stages[m.name]
			m.n = len(rs.Attempts) + 1
			rs.StartedAt, rs.Params, rs.Status = started, m.d.Params, record.Running
			rs.Attempts = append(rs.Attempts, record.Attempt{N: m.n, Status: record.Running, StartedAt: started})
		})
		m.log.Line(started, m.n, "pipectl", fmt.Sprintf("attempt %d started (%s), in a group of %d stage(s)", m.n, m.d.Why(), len(runs)))
		e.em.emit(Event{Type: StageStarted, Stage: m.name, Attempt: m.n, Cache: &record.CacheInfo{Key: m.d.Key, Status: "miss", Reasons: m.d.Reasons}})
		task := r.task(m.st, m.d.Params, runID, m.d.Key, m.n)
		task.LogPath = r.Records.LogPath(runID, m.name)
		req.Stages = append(req.Stages, executor.GroupStage{Task: task, Needs: m.inUnit})
	}
	if g.repair != "" {
		for _, m := range runs {
			m.log.Line(started, m.n, "pipectl", "repairing "+g.repair)
		}
	}

	// finishMu guards the members' done and unitName. After a member's
	// stageDone, nothing here touches its record: the last one may end
	// the run.
	var finishMu sync.Mutex
	unitName := ""
	finish := func(m *member, res executor.Result, failure *executor.Failure, status record.Status, reason string) {
		finishMu.Lock()
		defer finishMu.Unlock()
		if m.done {
			return
		}
		m.done = true
		e.finishMember(ctx, m, unitName, res, failure, status, reason, outputs, &outMu, runID, done)
	}
	sink := func(stage string, ev executor.Event, result *executor.Result) {
		if stage == "" && ev.Kind == executor.EventUnit {
			finishMu.Lock()
			defer finishMu.Unlock()
			unitName = ev.Text
			e.update(func(rec *record.Run) {
				for _, m := range runs {
					if as := rec.Stages[m.name].Attempts; !m.done {
						as[len(as)-1].Unit = ev.Text
					}
				}
			})
			return
		}
		m := byName[stage]
		if m == nil {
			return
		}
		switch {
		case result != nil:
			// A success is final at once; a failure waits for the end,
			// which tells a failed stage from one skipped by it.
			if result.Status == executor.Succeeded {
				finish(m, *result, nil, record.Succeeded, "")
			}
		case ev.Kind == executor.EventStarted:
			// When the unit says the stage started (its task's start
			// time), if that is plausible; else when we heard of it.
			now := r.now()
			if !ev.Time.IsZero() && ev.Time.After(started) && ev.Time.Before(now) {
				now = ev.Time
			}
			e.update(func(rec *record.Run) {
				rs := rec.Stages[stage]
				rs.StartedAt = now
				rs.Attempts[len(rs.Attempts)-1].StartedAt = now
			})
			m.log.Line(now, m.n, "pipectl", "started running in the group")
		default:
			e.event(stage, m.n, ev, m.log)
		}
	}

	var gres executor.GroupResult
	ex, err := r.Open(ctx, g.executor)
	if err == nil {
		gres, err = ex.(executor.GroupRunner).RunGroup(ctx, req, sink)
	}
	if gres.Unit != "" {
		finishMu.Lock()
		unitName = gres.Unit
		finishMu.Unlock()
	}
	status := map[string]record.Status{}
	for _, m := range runs {
		res, ok := gres.Results[m.name]
		var failure *executor.Failure
		st := record.Failed
		switch {
		case err == nil && ok && res.Status == executor.Succeeded:
			st = record.Succeeded
		case ctx.Err() != nil:
			st = record.Cancelled
		case err != nil:
			failure = &executor.Failure{Message: fmt.Sprintf("executor %s: %v", g.executor, err), Retryable: true}
		case !ok:
			failure = &executor.Failure{Message: fmt.Sprintf("executor %s: %v for stage %s", g.executor, errNoStatus, m.name)}
		case res.Status == executor.Failed:
			failure = res.Error
			if failure == nil {
				failure = &executor.Failure{Message: "failed (the executor gave no reason)"}
			}
		case res.Status == executor.Cancelled:
			msg := "cancelled by the executor"
			if res.Error != nil && res.Error.Message != "" {
				msg += ": " + res.Error.Message
			}
			failure = &executor.Failure{Message: msg}
		default:
			failure = &executor.Failure{Message: fmt.Sprintf("executor %s: %v %q", g.executor, errNoStatus, res.Status)}
		}
		reason := ""
		if st != record.Succeeded {
			for _, need := range m.inUnit {
				if status[need] != record.Succeeded {
					st, reason, failure = record.Skipped, fmt.Sprintf("upstream %s %s", need, status[need]), nil
					break
				}
			}
		}
		status[m.name] = st
		finish(m, res, failure, st, reason)
	}
}

// finishMember records how a member's attempt ended, caches a success and
// reports it to the scheduler.
func (e *execution) finishMember(ctx context.Context, m *member, unit string, res executor.Result, failure *executor.Failure,
	status record.Status, reason string, outputs map[string]map[string]string, outMu *sync.Mutex, runID string, done chan<- stageDone) {
	r := e.r
	ended := r.now()
	var startedAt = ended
	e.update(func(rec *record.Run) {
		rs := rec.Stages[m.name]
		a := &rs.Attempts[len(rs.Attempts)-1]
		startedAt = a.StartedAt
		if status == record.Skipped {
			// Never ran: no attempt, as a stage skipped outside a group.
			rs.Attempts = rs.Attempts[:len(rs.Attempts)-1]
			return
		}
		a.Status, a.EndedAt, a.DurationMS, a.Error = status, ended, ended.Sub(a.StartedAt).Milliseconds(), failure
		if unit != "" {
			a.Unit = unit
		}
		startedAt = a.StartedAt
		rs.Links = mergeLinks(rs.Links, res.Links)
	})
	switch status {
	case record.Succeeded:
		m.log.Line(ended, m.n, "pipectl", fmt.Sprintf("attempt %d succeeded in %s", m.n, ended.Sub(startedAt).Round(time.Millisecond)))
		outMu.Lock()
		outputs[m.name] = res.Outputs
		if m.d.Key == "" {
			// Key it with the outputs it actually received.
			if params, err := r.render(m.st, outputs, runID, e.date); err == nil {
				if comps, _, err := r.components(ctx, m.st, params); err == nil {
					m.d.Components, m.d.Key, m.d.Params = &comps, comps.Key(), params
				}
			}
		}
		outMu.Unlock()
		e.remember(m.name, m.d, res, m.log)
	case record.Skipped:
		m.log.Line(ended, m.n, "pipectl", fmt.Sprintf("attempt %d not run: %s", m.n, reason))
	case record.Cancelled:
		m.log.Line(ended, m.n, "pipectl", fmt.Sprintf("attempt %d cancelled", m.n))
	default:
		m.log.Line(ended, m.n, "pipectl", fmt.Sprintf("attempt %d %s: %s", m.n, status, failure.Message))
		if failure.Detail != "" {
			m.log.Line(ended, m.n, "pipectl", failure.Detail)
		}
	}
	done <- stageDone{name: m.name, status: status, decision: m.d, result: res, failure: failure, reason: reason}
}
