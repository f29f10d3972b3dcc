package run

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
)

// groupFake is a fake that runs groups: each group is one "unit" whose
// stages run in order through the fake's run, with in-group output
// references wired as a remote unit would.
type groupFake struct {
	*fake
	can bool

	gmu    sync.Mutex
	groups []executor.Group
	// fail makes a stage's task fail inside a unit.
	fail map[string]bool
}

func (g *groupFake) CanRunGroups() bool { return g.can }

func (g *groupFake) RunGroup(ctx context.Context, grp executor.Group, sink executor.GroupSink) (executor.GroupResult, error) {
	g.gmu.Lock()
	g.groups = append(g.groups, grp)
	unit := grp.Repair
	if unit == "" {
		unit = fmt.Sprintf("unit-%d", len(g.groups))
	}
	g.gmu.Unlock()
	sink("", executor.Event{Kind: executor.EventUnit, Text: unit}, nil)
	out := executor.GroupResult{Unit: unit, Results: map[string]executor.Result{}}
	for _, s := range grp.Stages {
		t := s.Task
		t.Params = maps.Clone(t.Params)
		ok := true
		for k, v := range t.Params {
			t.Params[k] = executor.ExpandOutputRefs(v, func(stage, output string) string {
				r := out.Results[stage]
				if r.Status != executor.Succeeded {
					ok = false
				}
				return r.Outputs[output]
			})
		}
		for _, n := range s.Needs {
			ok = ok && out.Results[n].Status == executor.Succeeded
		}
		if !ok {
			out.Results[t.Stage] = executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "upstream failed"}}
			continue
		}
		sink(t.Stage, executor.Event{Kind: executor.EventStarted}, nil)
		res, err := g.fake.Run(ctx, t, func(ev executor.Event) { sink(t.Stage, ev, nil) })
		if err != nil {
			return out, err
		}
		if g.fail[t.Stage] {
			res = executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "boom in " + t.Stage}}
		}
		out.Results[t.Stage] = res
		r := res
		sink(t.Stage, executor.Event{}, &r)
	}
	return out, nil
}

func (g *groupFake) groupStages() [][]string {
	g.gmu.Lock()
	defer g.gmu.Unlock()
	var out [][]string
	for _, grp := range g.groups {
		var names []string
		for _, s := range grp.Stages {
			names = append(names, s.Task.Stage)
		}
		out = append(out, names)
	}
	return out
}

// groupHarness serves "remote" from a groupFake and "fake" (a local
// executor without groups) from the harness's fake.
func groupHarness(t *testing.T, can bool) (*harness, *groupFake, func(*plan.Plan) *Runner) {
	h := newHarness(t)
	g := &groupFake{fake: newFake(), can: can, fail: map[string]bool{}}
	runner := func(pl *plan.Plan) *Runner {
		r := h.runner(pl)
		local := r.Open
		r.Open = func(ctx context.Context, name string) (executor.Executor, error) {
			if name == "remote" {
				return g, nil
			}
			return local(ctx, name)
		}
		return r
	}
	return h, g, runner
}

func execute(t *testing.T, r *Runner, opts Options) (*record.Run, error) {
	t.Helper()
	p, err := r.Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p.Execute(context.Background(), nil)
}

// mixedPlan: a → b → d and a → c on the remote executor; local needs b
// and runs on the local one.
func mixedPlan(t *testing.T) *plan.Plan {
	pl := testPlan(t,
		stageDef{name: "a"},
		stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"in": "${stages.a.outputs.out}"}},
		stageDef{name: "c", needs: []string{"a"}},
		stageDef{name: "d", needs: []string{"b"}, params: map[string]any{"in": "${stages.b.outputs.out}"}},
		stageDef{name: "local", needs: []string{"b"}, params: map[string]any{"in": "${stages.b.outputs.out}"}},
	)
	for _, n := range []string{"a", "b", "c", "d"} {
		pl.Stages[n].Executor = "remote"
	}
	return pl
}

func TestGroupRunsRemoteStagesAsOneUnit(t *testing.T) {
	h, g, runner := groupHarness(t, true)
	rec, err := execute(t, runner(mixedPlan(t)), Options{Parallelism: 1})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := g.groupStages(); len(got) != 1 || !slices.Equal(got[0], []string{"a", "b", "c", "d"}) {
		t.Fatalf("groups %v, want one group of a, b, c, d", got)
	}
	grp := g.groups[0]
	if in := grp.Stages[1].Task.Params["in"]; in != executor.OutputRef("a", "out") {
		t.Errorf("b's in = %q, want the reference to a's output", in)
	}
	if !slices.Equal(grp.Stages[1].Needs, []string{"a"}) || grp.Stages[0].Needs != nil {
		t.Errorf("needs: a %v, b %v", grp.Stages[0].Needs, grp.Stages[1].Needs)
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		st := rec.Stages[n]
		if st.Status != record.Succeeded || len(st.Attempts) != 1 || st.Attempts[0].Unit != "unit-1" || st.Cache == nil || st.Cache.Key == "" {
			t.Errorf("%s: %s attempts %+v cache %+v", n, st.Status, st.Attempts, st.Cache)
		}
	}
	if got := rec.Stages["b"].Params["in"]; got != "a" {
		t.Errorf("b's recorded in = %q, want the output it received", got)
	}
	if rec.Stages["local"].Status != record.Succeeded || h.fake.tasks["local"].Params["in"] != "b" {
		t.Errorf("the local stage: %s with %v", rec.Stages["local"].Status, h.fake.tasks["local"].Params)
	}

	// Again: every stage is a hit, including those keyed after they ran.
	rec, err = execute(t, runner(mixedPlan(t)), Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a=cached b=cached c=cached d=cached local=cached"; statuses(rec) != want {
		t.Errorf("second run: %s, want %s", statuses(rec), want)
	}
	if n := len(g.groupStages()); n != 1 {
		t.Errorf("%d groups ran, want none the second time", n-1)
	}
}

func TestGroupFailureResumesByRepair(t *testing.T) {
	_, g, runner := groupHarness(t, true)
	g.fail["b"] = true
	rec, err := execute(t, runner(mixedPlan(t)), Options{Parallelism: 1})
	if err == nil {
		t.Fatal("the run succeeded")
	}
	if want := "a=succeeded b=failed c=succeeded d=skipped local=skipped"; statuses(rec) != want {
		t.Errorf("statuses %s, want %s", statuses(rec), want)
	}
	if got := rec.Stages["d"].Reason; got != "upstream b failed" {
		t.Errorf("d: %q", got)
	}
	if rec.Error == nil || rec.Error.Stage != "b" {
		t.Errorf("root cause %+v", rec.Error)
	}
	g.fail["b"] = false
	rec, err = execute(t, runner(mixedPlan(t)), Options{Resume: rec.ID, Parallelism: 1})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	got := g.groupStages()
	if len(got) != 2 || !slices.Equal(got[1], []string{"b", "d"}) || g.groups[1].Repair != "unit-1" {
		t.Fatalf("groups %v (repair %q), want b, d repairing unit-1", got, g.groups[len(g.groups)-1].Repair)
	}
	if in := g.groups[1].Stages[0].Task.Params["in"]; in != "a" {
		t.Errorf("b's in = %q on resume, want a's recorded output", in)
	}
	if want := "a=succeeded b=succeeded c=succeeded d=succeeded local=succeeded"; statuses(rec) != want {
		t.Errorf("resumed: %s", statuses(rec))
	}
	if n := len(rec.Stages["b"].Attempts); n != 2 {
		t.Errorf("b has %d attempts, want 2", n)
	}
}

func TestStagesRunAloneWithoutGroups(t *testing.T) {
	for _, tc := range []struct {
		name    string
		can     bool
		retries int
	}{{"an executor without groups (an older plugin)", false, 0}, {"stages with retries", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			h, g, runner := groupHarness(t, tc.can)
			pl := mixedPlan(t)
			for _, st := range pl.Stages {
				st.Retries = tc.retries
			}
			rec, err := execute(t, runner(pl), Options{Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(g.groupStages()); n != 0 {
				t.Errorf("%d groups", n)
			}
			if g.callsOf("b") != 1 || rec.Stages["b"].Status != record.Succeeded || g.tasks["b"].Params["in"] != "a" {
				t.Errorf("b: %s %v", rec.Stages["b"].Status, g.tasks["b"].Params)
			}
			said := false
			for _, ev := range h.eventsOf(Log) {
				said = said || ev.Stage == "b" && strings.Contains(ev.Text, "runs alone") && strings.Contains(ev.Text, "retries")
			}
			if said != (tc.retries > 0) {
				t.Errorf("a stage with retries says it runs alone: %v, want %v", said, tc.retries > 0)
			}
		})
	}
}

func TestCancelledGroup(t *testing.T) {
	_, g, runner := groupHarness(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	g.fake.run = func(c context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		if task.Stage == "b" {
			cancel()
			<-c.Done()
			return executor.Result{Status: executor.Cancelled}, nil
		}
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": task.Stage}}, nil
	}
	r := runner(mixedPlan(t))
	p, err := r.Prepare(ctx, Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := p.Execute(ctx, nil)
	if rec.Status != record.Cancelled || rec.Stages["b"].Status != record.Cancelled || rec.Stages["a"].Status != record.Succeeded {
		t.Errorf("run %s: %s", rec.Status, statuses(rec))
	}
}

// TestInterruptedGroupResumes: when pipectl died while a group ran (its
// members' last attempts are interrupted), the resume tells the executor
// so (Interrupted), with the unit when it was recorded and without one when
// pipectl died before it learned it; a failed group's resume does not.
func TestInterruptedGroupResumes(t *testing.T) {
	for _, unit := range []string{"unit-1", ""} {
		_, g, runner := groupHarness(t, true)
		g.fail["b"] = true
		r := runner(mixedPlan(t))
		rec, err := execute(t, r, Options{Parallelism: 1})
		if err == nil {
			t.Fatal("the run succeeded")
		}
		// As if pipectl had died while b and d ran in the unit.
		for _, n := range []string{"b", "d"} {
			st := rec.Stages[n]
			st.Status, st.Reason, st.Error = record.Interrupted, "", nil
			st.Attempts = []record.Attempt{{N: 1, Status: record.Interrupted, Unit: unit}}
		}
		rec.Status = record.Interrupted
		if err := r.Records.Save(rec); err != nil {
			t.Fatal(err)
		}
		g.fail["b"] = false
		rec, err = execute(t, runner(mixedPlan(t)), Options{Resume: rec.ID, Parallelism: 1})
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		last := g.groups[len(g.groups)-1]
		if !last.Interrupted || last.Repair != unit || len(last.Stages) != 2 || last.Stages[0].Task.Attempt != 2 {
			t.Errorf("unit %q: the resume's group is %+v, want b and d, attempt 2, interrupted, repairing %q", unit, last, unit)
		}
	}
	// A failed group: not interrupted.
	_, g, runner := groupHarness(t, true)
	g.fail["b"] = true
	rec, _ := execute(t, runner(mixedPlan(t)), Options{Parallelism: 1})
	g.fail["b"] = false
	if _, err := execute(t, runner(mixedPlan(t)), Options{Resume: rec.ID, Parallelism: 1}); err != nil {
		t.Fatal(err)
	}
	if last := g.groups[len(g.groups)-1]; last.Interrupted {
		t.Errorf("the resume of a failed group says interrupted")
	}
}
