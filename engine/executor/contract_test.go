package executor_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/executor/executortest"
)

func TestParseExitValue(t *testing.T) {
	for name, tc := range executortest.ExitValueCases() {
		t.Run(name, func(t *testing.T) {
			ev, err := executor.ParseExitValue([]byte(tc.Exit), tc.Promised)
			if tc.Error != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.Error) {
					t.Fatalf("error %v, want one starting %q", err, tc.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := executor.ExitValue{Outputs: tc.Outputs, Metrics: tc.Metrics, Warnings: tc.Warnings}
			if d := cmp.Diff(want, ev, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("wrong exit value (-want +got):\n%s", d)
			}
		})
	}
}

func TestNotebookParams(t *testing.T) {
	task := executor.Task{RunID: "r1", Pipeline: "p", Stage: "s", Target: "dev", GitCommit: "abc",
		Params: map[string]string{"a": "1", "data_root": "/spec/cannot/set/this"}}
	got := executor.NotebookParams(task, executor.Place{DataRoot: "/d", OutputRoot: "/o", ProjectRoot: "/p",
		TrackingURI: "databricks", RegistryURI: "databricks-uc", ExperimentRoot: "/Shared/x", Catalog: "c", Schema: "s"})
	want := map[string]string{"a": "1", "pipectl_run_id": "r1", "pipectl_pipeline": "p", "pipectl_stage": "s",
		"pipectl_target": "dev", "data_root": "/d", "output_root": "/o", "project_root": "/p",
		"mlflow_tracking_uri": "databricks", "mlflow_registry_uri": "databricks-uc", "experiment_root": "/Shared/x",
		"uc_catalog": "c", "uc_schema": "s", "git_commit": "abc"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("wrong parameters (-want +got):\n%s", d)
	}
	if len(executor.ContextParams(task, executor.Place{})) != len(executor.ContextParamNames) {
		t.Errorf("ContextParams and ContextParamNames disagree")
	}
}

func TestIsDeltaTable(t *testing.T) {
	for path, want := range map[string]bool{
		"/v/predictions/r1/predictions.delta":   true,
		"/v/predictions/r1/predictions.delta/":  true,
		"/v/predictions/r1/predictions.parquet": false,
		"/v/data/financial_news/v1":             false,
		"predictions.delta.csv":                 false,
	} {
		if got := executor.IsDeltaTable(path); got != want {
			t.Errorf("IsDeltaTable(%q) = %v, want %v", path, got, want)
		}
	}
}
