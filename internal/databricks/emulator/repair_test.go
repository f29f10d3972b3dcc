package emulator_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// TestRepair: a task that fails in a multi-task run is repaired in that
// run: only it and its dependants run again (new task runs), reading the
// task values of the tasks that succeeded; repair_history lists the repair;
// a second repair needs latest_repair_id.
func TestRepair(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	importProject(t, w, "/Shared/proj")
	e.InjectTask(emulator.TaskFault{TaskKey: "second", Kind: emulator.FailTask, Error: "boom", Times: 1})
	resp, err := w.Jobs.Submit(ctx, jobs.SubmitRun{RunName: "chain", Tasks: []jobs.SubmitTask{
		notebookTask("first", "/Shared/proj/echo", map[string]string{"message": "hi"}),
		notebookTask("second", "/Shared/proj/echo", map[string]string{"message": "got {{tasks.first.values.echo}}"}, "first"),
		notebookTask("third", "/Shared/proj/echo", map[string]string{"message": "and {{tasks.second.values.echo}}"}, "second"),
		notebookTask("side", "/Shared/proj/echo", map[string]string{"message": "side"}, "first"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, w, resp.RunId)
	results := func(r *jobs.Run) map[string]jobs.RunResultState {
		m := map[string]jobs.RunResultState{}
		for _, task := range r.Tasks {
			m[task.TaskKey] = task.State.ResultState
		}
		return m
	}
	if got := results(run); got["second"] != jobs.RunResultStateFailed || got["third"] != jobs.RunResultStateUpstreamFailed || got["side"] != jobs.RunResultStateSuccess {
		t.Fatalf("tasks %v", got)
	}
	before := e.TaskRunIDs(run.RunId)

	_, err = w.Jobs.RepairRun(ctx, jobs.RepairRun{RunId: run.RunId})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	rp, err := w.Jobs.RepairRun(ctx, jobs.RepairRun{RunId: run.RunId, RerunTasks: []string{"second"}, RerunDependentTasks: true})
	if err != nil {
		t.Fatal(err)
	}
	run = waitRun(t, w, run.RunId)
	after := e.TaskRunIDs(run.RunId)
	var rerun []int
	for i := range before {
		if before[i] != after[i] {
			rerun = append(rerun, i)
		}
	}
	if !slices.Equal(rerun, []int{1, 2}) {
		t.Errorf("repair re-ran tasks %v, want second and third (1, 2)", rerun)
	}
	if got := results(run); got["second"] != jobs.RunResultStateSuccess || got["third"] != jobs.RunResultStateSuccess || run.State.ResultState != jobs.RunResultStateSuccess {
		t.Errorf("after the repair: run %s, tasks %v", run.State.ResultState, got)
	}
	hist, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: run.RunId, IncludeHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(hist.RepairHistory); n != 2 || hist.RepairHistory[1].Id != rp.Response.RepairId || !slices.Equal(hist.RepairHistory[1].TaskRunIds, after[1:3]) {
		t.Errorf("repair_history %+v", hist.RepairHistory)
	}
	_, err = w.Jobs.RepairRun(ctx, jobs.RepairRun{RunId: run.RunId, RerunTasks: []string{"side"}})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	if _, err = w.Jobs.RepairRun(ctx, jobs.RepairRun{RunId: run.RunId, RerunTasks: []string{"side"}, LatestRepairId: rp.Response.RepairId}); err != nil {
		t.Errorf("second repair with latest_repair_id: %v", err)
	}
	waitRun(t, w, run.RunId)
}

// TestSubmitRefusesJobClusters: one-time runs have no shared job clusters.
func TestSubmitRefusesJobClusters(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	body := `{"tasks": [{"task_key": "a", "job_cluster_key": "shared", "notebook_task": {"notebook_path": "/x"}}],
		"job_clusters": [{"job_cluster_key": "shared", "new_cluster": {"spark_version": "x"}}]}`
	req, err := http.NewRequest(http.MethodPost, e.URL+"/api/2.2/jobs/runs/submit", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+dbtest.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "Shared job cluster feature is not supported in runs/submit API.") {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

// TestComputeStartup: tasks sharing a serverless environment pay one
// start-up; new_cluster tasks pay one each.
func TestComputeStartup(t *testing.T) {
	const startup = 400 * time.Millisecond
	e := dbtest.Emulator(t, emulator.Options{ComputeStartup: startup})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	importProject(t, w, "/Shared/proj")
	env := []jobs.JobEnvironment{{EnvironmentKey: "e", Spec: &compute.Environment{EnvironmentVersion: "3"}}}
	chain := func(cluster bool) time.Duration {
		var tasks []jobs.SubmitTask
		for i, key := range []string{"a", "b", "c"} {
			var deps []string
			if i > 0 {
				deps = []string{tasks[i-1].TaskKey}
			}
			task := notebookTask(key, "/Shared/proj/echo", map[string]string{"message": key}, deps...)
			if cluster {
				task.NewCluster = &compute.ClusterSpec{SparkVersion: "15.4.x-scala2.12", NodeTypeId: "i3.xlarge", NumWorkers: 1}
			} else {
				task.EnvironmentKey = "e"
			}
			tasks = append(tasks, task)
		}
		req := jobs.SubmitRun{Tasks: tasks}
		if !cluster {
			req.Environments = env
		}
		start := time.Now()
		resp, err := w.Jobs.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, w, resp.RunId)
		return time.Since(start)
	}
	shared, clusters := chain(false), chain(true)
	if shared > clusters-2*startup+startup/2 {
		t.Errorf("3 tasks on one environment took %s, on 3 new clusters %s: want about %s less", shared, clusters, 2*startup)
	}
}
