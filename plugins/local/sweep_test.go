package local

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/lock"
	"github.com/pipectl/pipectl/engine/record"
)

// TestStoppedAttemptsRunsAreMarkedKilled checks sweepRuns: before a stage
// that uses MLflow starts, runs left RUNNING by notebooks that can no
// longer end them are marked KILLED, and no other run is touched. The runs
// are made through the REST API as notebooks make them (tagged
// pipectl.run_id and pipectl.stage); the pipectl run records are real
// records in the state directory.
func TestStoppedAttemptsRunsAreMarkedKilled(t *testing.T) {
	f := getFixture(t)
	ctx := testCtx(t)
	task := f.task("echo.py", map[string]string{"greeting": "hi"})

	// A stage of the same pipectl run that is running here now: its run
	// must survive the sweep.
	inflight := task
	inflight.Stage, inflight.Notebook = "inflight", strings.Replace(task.Notebook, "echo.py", "wait.py", 1)
	inflight.Params = map[string]string{"mlflow": "true"}
	wctx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	ready := make(chan string, 1)
	waitDone := make(chan executor.Result, 1)
	go func() {
		var mlflowRun string
		res, _ := f.e.Run(wctx, inflight, func(ev executor.Event) {
			if rest, ok := strings.CutPrefix(ev.Text, "mlflow run "); ok {
				mlflowRun = rest
			}
			if strings.HasPrefix(ev.Text, "ready ") {
				ready <- mlflowRun
			}
		})
		waitDone <- res
	}()
	var inflightRun string
	select {
	case inflightRun = <-ready:
	case res := <-waitDone:
		t.Fatalf("the in-flight stage ended: %+v", res)
	}
	f.e.mu.Lock()
	api := newMLflowAPI(f.e.servers[f.state].URL())
	f.e.mu.Unlock()

	// Records of other pipectl runs: one whose process was killed, one
	// that failed, one alive in another process (this test's), and runs
	// with no record at all.
	records := &record.Store{Dir: record.DirIn(f.state)}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	mkRecord := func(status record.Status, owner lock.Owner) string {
		r := &record.Run{Pipeline: "tests", Target: "local", Status: status, Owner: owner, Stages: map[string]*record.Stage{}}
		if err := records.Create(r, time.Now()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(records.Path(r.ID)) })
		return r.ID
	}
	killed := mkRecord(record.Running, lock.Owner{PID: dead.Process.Pid, Host: host})
	failedRun := mkRecord(record.Failed, lock.Owner{PID: dead.Process.Pid, Host: host})
	alive := mkRecord(record.Running, lock.Self("x", time.Now()))

	exp := experimentID(t, api, "pipectl-test-sweep")
	mk := func(run, stage string) string {
		var out struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		err := api.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/create", map[string]any{
			"experiment_id": exp, "start_time": time.Now().UnixMilli(),
			"tags": []map[string]string{{"key": TagRunID, "value": run}, {"key": TagStage, "value": stage}},
		}, &out)
		if err != nil {
			t.Fatal(err)
		}
		id := out.Run.Info.RunID
		t.Cleanup(func() { api.killRun(context.Background(), id) })
		return id
	}
	want := map[string]string{
		mk(task.RunID, task.Stage): "KILLED",  // an earlier attempt of this very stage
		mk(task.RunID, "gone"):     "KILLED",  // a stage of this run whose executor died
		mk(killed, "train"):        "KILLED",  // pipectl was killed and never resumed
		mk(failedRun, "train"):     "KILLED",  // a finished run cannot have live notebooks
		mk(alive, "train"):         "RUNNING", // another pipectl is running it
		mk("manual", "train"):      "RUNNING", // not a pipectl run of this state directory
		inflightRun:                "RUNNING", // running here now
	}

	var rec events
	if res := run(t, ctx, f.e, task, &rec); res.Status != executor.Succeeded {
		t.Fatalf("stage: %s %+v\n%s", res.Status, res.Error, rec.text())
	}
	for id, status := range want {
		if got := runStatus(t, f, id); got != status {
			t.Errorf("MLflow run %s is %s, want %s", id, got, status)
		}
	}
	notes := strings.Join(rec.logs("stderr"), "\n")
	if n := strings.Count(notes, "KILLED: the attempt that started it was stopped"); n != 4 {
		t.Errorf("%d runs reported as marked, want 4:\n%s", n, notes)
	}

	stopWait()
	if res := <-waitDone; res.Status != executor.Cancelled {
		t.Errorf("in-flight stage: %s %+v", res.Status, res.Error)
	}
}

// experimentID returns the id of the experiment name, creating it.
func experimentID(t *testing.T, api *mlflowAPI, name string) string {
	t.Helper()
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if err := api.call(context.Background(), http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+name, nil, &got); err == nil {
		return got.Experiment.ID
	}
	var made struct {
		ID string `json:"experiment_id"`
	}
	if err := api.call(context.Background(), http.MethodPost, "/api/2.0/mlflow/experiments/create", map[string]any{"name": name}, &made); err != nil {
		t.Fatal(err)
	}
	return made.ID
}
