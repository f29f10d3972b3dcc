package local

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/executor"
)

// TestChampionsReadTheRegistry registers a model version in the real local
// MLflow store, logs the data it was trained on and points an alias at it:
// Champions must name the version, the pipectl run and the data version.
func TestChampionsReadTheRegistry(t *testing.T) {
	f := getFixture(t)
	ctx := testCtx(t)
	model := "pipectl_test_gc_" + newID()
	var rec events
	task := f.task("track.py", map[string]string{"model_name": model, "steps": "1"})
	trained := run(t, ctx, f.e, task, &rec)
	if trained.Status != executor.Succeeded {
		t.Fatalf("track.py: %s %+v\n%s", trained.Status, trained.Error, rec.text())
	}
	f.e.mu.Lock()
	srv := f.e.servers[f.state]
	f.e.mu.Unlock()
	api := newMLflowAPI(srv.URL())
	for k, v := range map[string]string{"data_name": "news", "data_version": "v7"} {
		if err := api.call(ctx, http.MethodPost, "/api/2.0/mlflow/runs/log-parameter",
			map[string]string{"run_id": trained.Outputs["run_id"], "key": k, "value": v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := api.call(ctx, http.MethodPost, "/api/2.0/mlflow/registered-models/alias",
		map[string]string{"name": model, "alias": "champion", "version": trained.Outputs["model_version"]}, nil); err != nil {
		t.Fatal(err)
	}

	champions, err := Champions(ctx, f.state)
	if err != nil {
		t.Fatal(err)
	}
	var got []Champion
	for _, c := range champions {
		if c.Model == model {
			got = append(got, c)
		}
	}
	want := []Champion{{Model: model, Alias: "champion", Version: 1, RunID: task.RunID, DataName: "news", DataVersion: "v7"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrong champions (-want +got)\n%s", diff)
	}

	if none, err := Champions(ctx, t.TempDir()); err != nil || len(none) != 0 {
		t.Errorf("a state directory without a store: %v, %v", none, err)
	}
}

// TestCachedDecisionNeedsItsAlias: a cached stage that moves an alias
// (evaluate's champion) is valid only while the alias still points at the
// version the stage left it on.
func TestCachedDecisionNeedsItsAlias(t *testing.T) {
	f := getFixture(t)
	ctx := testCtx(t)
	model := "pipectl_test_alias_" + newID()
	var versions []string
	for range 2 {
		var rec events
		task := f.task("track.py", map[string]string{"model_name": model, "steps": "1"})
		trained := run(t, ctx, f.e, task, &rec)
		if trained.Status != executor.Succeeded {
			t.Fatalf("track.py: %s %+v\n%s", trained.Status, trained.Error, rec.text())
		}
		versions = append(versions, trained.Outputs["model_version"])
	}
	f.e.mu.Lock()
	srv := f.e.servers[f.state]
	f.e.mu.Unlock()
	api := newMLflowAPI(srv.URL())
	point := func(version string) {
		t.Helper()
		if err := api.call(ctx, http.MethodPost, "/api/2.0/mlflow/registered-models/alias",
			map[string]string{"name": model, "alias": "champion", "version": version}, nil); err != nil {
			t.Fatal(err)
		}
	}
	decided := f.task("track.py", map[string]string{"alias": "champion"})
	check := func() executor.CheckResult {
		t.Helper()
		res, err := f.e.CheckOutputs(ctx, executor.CheckRequest{Task: decided,
			Outputs: map[string]string{"model_name": model, "model_version": versions[0]}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	point(versions[0])
	if res := check(); !res.Exists {
		t.Fatalf("alias where the stage left it: %+v", res)
	}
	point(versions[1])
	if res := check(); res.Exists || !strings.Contains(res.Reason, "now points at models:/"+model+"/"+versions[1]) {
		t.Fatalf("alias moved since: %+v", res)
	}
}
