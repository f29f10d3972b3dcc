package databricks_test

import (
	"context"
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
