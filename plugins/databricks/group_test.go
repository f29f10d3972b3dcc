package databricks_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// TestResumeRepairsAnOrphanedRun: a resume whose unit is still running
// (the session that followed it died) cancels that run and repairs it,
// instead of leaving it running beside a new one.
func TestResumeRepairsAnOrphanedRun(t *testing.T) {
	r := newRig(t, emulator.Options{Python: dbtest.NoPython})
	r.e.InjectTask(emulator.TaskFault{TaskKey: "a", Kind: emulator.StuckPending, Times: 1})
	g := executor.Group{Stages: []executor.GroupStage{
		{Task: r.task("a", "echo.py", map[string]string{"message": "hi"})},
		{Task: r.task("b", "echo.py", map[string]string{"message": executor.OutputRef("a", "echo")}), Needs: []string{"a"}},
	}}
	// The first session: its run stays active while it follows it.
	units := make(chan string, 1)
	orphanCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go r.x.RunGroup(orphanCtx, g, func(stage string, ev executor.Event, done *executor.Result) {
		if ev.Kind == executor.EventUnit {
			units <- ev.Text
		}
	})
	var unit string
	select {
	case unit = <-units:
	case <-time.After(30 * time.Second):
		t.Fatal("no unit")
	}
	if len(r.e.ActiveRuns()) != 1 {
		t.Fatalf("active runs %v", r.e.ActiveRuns())
	}
	r.e.ResetCalls()
	resume := executor.Group{Repair: unit, Stages: slices.Clone(g.Stages)}
	for i := range resume.Stages {
		resume.Stages[i].Task.Attempt = 2
	}
	res, err := r.x.RunGroup(context.Background(), resume, func(string, executor.Event, *executor.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	calls := r.e.Calls()
	if res.Unit != unit || calls["POST /api/2.2/jobs/runs/cancel"] < 1 || calls["POST /api/2.2/jobs/runs/repair"] != 1 || calls["POST /api/2.2/jobs/runs/submit"] != 0 {
		t.Errorf("unit %q (was %q), calls %v: want the orphaned run cancelled and repaired", res.Unit, unit, calls)
	}
	if len(res.Results) != 2 {
		t.Errorf("results %+v", res.Results)
	}
}

// resumeOf is g as a resume hands it over after pipectl died while g ran:
// the next attempts, interrupted, with unit (empty when pipectl never
// learned it).
func resumeOf(g executor.Group, unit string) executor.Group {
	r := executor.Group{Repair: unit, Interrupted: true, Stages: slices.Clone(g.Stages)}
	for i := range r.Stages {
		r.Stages[i].Task.Attempt++
	}
	return r
}

func echoGroup(r *rig) executor.Group {
	return executor.Group{Stages: []executor.GroupStage{
		{Task: r.task("a", "echo.py", map[string]string{"message": "hi"})},
		{Task: r.task("b", "echo.py", map[string]string{"message": executor.OutputRef("a", "echo")}), Needs: []string{"a"}},
	}}
}

// TestInterruptedResumeFindsTheLostSubmit: pipectl died while waiting for
// the answer to runs/submit (the run started); the resume sends the same
// idempotency token again and follows that run instead of starting a
// second one beside it.
func TestInterruptedResumeFindsTheLostSubmit(t *testing.T) {
	r := newRig(t, emulator.Options{})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "POST /api/2.2/jobs/runs/submit", LoseResponse: time.Minute})
	g := echoGroup(r)
	dead, stop := context.WithCancel(context.Background())
	defer stop()
	go r.x.RunGroup(dead, g, func(string, executor.Event, *executor.Result) {})
	deadline := time.Now().Add(30 * time.Second)
	for len(r.e.RunIDs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run was not submitted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := r.x.RunGroup(context.Background(), resumeOf(g, ""), func(string, executor.Event, *executor.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	ids := r.e.RunIDs()
	if len(ids) != 1 || res.Unit != fmt.Sprintf("databricks run %d", ids[0]) {
		t.Errorf("runs %v, unit %q: want the resume to follow the one run submitted", ids, res.Unit)
	}
	for _, s := range []string{"a", "b"} {
		if res.Results[s].Status != executor.Succeeded {
			t.Errorf("%s: %+v", s, res.Results[s])
		}
	}
	if n := len(r.e.TaskRuns()); n != 2 {
		t.Errorf("%d task runs, want 2", n)
	}
}

// TestInterruptedResumeTakesWhatSucceeded: the run ended while pipectl was
// dead; the resume takes the results of the tasks that succeeded in it
// rather than running them again (before, "it succeeded" made it submit a
// new run of every stage).
func TestInterruptedResumeTakesWhatSucceeded(t *testing.T) {
	r := newRig(t, emulator.Options{})
	g := echoGroup(r)
	first, err := r.x.RunGroup(context.Background(), g, func(string, executor.Event, *executor.Result) {})
	if err != nil || first.Unit == "" {
		t.Fatalf("first run: %v %+v", err, first)
	}
	r.e.ResetCalls()
	res, err := r.x.RunGroup(context.Background(), resumeOf(g, first.Unit), func(string, executor.Event, *executor.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	calls := r.e.Calls()
	if res.Unit != first.Unit || calls["POST /api/2.2/jobs/runs/submit"] != 0 || calls["POST /api/2.2/jobs/runs/repair"] != 0 {
		t.Errorf("unit %q (was %q), calls %v: want the results taken from the run", res.Unit, first.Unit, calls)
	}
	for _, s := range []string{"a", "b"} {
		if res.Results[s].Status != executor.Succeeded || res.Results[s].Outputs["echo"] != "HI" {
			t.Errorf("%s: %+v", s, res.Results[s])
		}
	}
	if n := len(r.e.TaskRuns()); n != 2 {
		t.Errorf("%d task runs, want 2 (none run again)", n)
	}
}
