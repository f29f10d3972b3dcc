package local

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/executor"
)

func TestTailText(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		b.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	got := tailText(b.String())
	lines := strings.Split(got, "\n")
	if len(lines) != maxDetailLines+1 || lines[0] != "..." {
		t.Errorf("tail has %d lines starting %q, want ... and %d lines", len(lines), lines[0], maxDetailLines)
	}
	if long := tailText(strings.Repeat("x", maxDetailBytes*2)); len(long) > maxDetailBytes+3 {
		t.Errorf("tail of a long line is %d bytes", len(long))
	}
}

func TestStageParams(t *testing.T) {
	task := executor.Task{RunID: "r1", Pipeline: "p", Stage: "s", Target: "local", GitCommit: "abc",
		Params: map[string]string{"b": "2", "a": "x=y", "data_root": "/elsewhere"}}
	l := layout{root: "/proj", cfg: Config{DataRoot: "/proj/.pipectl/data", OutputRoot: "/out"}}
	got := stageParams(task, l, "http://127.0.0.1:1")
	want := []string{"pipectl_run_id=r1", "pipectl_pipeline=p", "pipectl_stage=s", "pipectl_target=local",
		"data_root=/proj/.pipectl/data", "output_root=/out", "project_root=/proj",
		"mlflow_tracking_uri=http://127.0.0.1:1", "mlflow_registry_uri=http://127.0.0.1:1",
		"experiment_root=", "uc_catalog=", "uc_schema=", "git_commit=abc", "a=x=y", "b=2"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("params (-want +got):\n%s", d)
	}
}

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		raw  string
		want Config
		err  string
	}{
		"defaults": {raw: "", want: Config{DataRoot: "/p/.pipectl/data", OutputRoot: "/p/.pipectl/predictions"}},
		"null":     {raw: "null", want: Config{DataRoot: "/p/.pipectl/data", OutputRoot: "/p/.pipectl/predictions"}},
		"relative": {raw: `{"data_root": "d", "output_root": "o/x"}`, want: Config{DataRoot: "/p/d", OutputRoot: "/p/o/x"}},
		"absolute": {raw: `{"data_root": "/d/", "output_root": "/o"}`, want: Config{DataRoot: "/d", OutputRoot: "/o"}},
		"unknown":  {raw: `{"data_rot": "d"}`, err: `unknown field "data_rot"`},
		"bad type": {raw: `{"data_root": 1}`, err: "local target configuration"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseConfig(json.RawMessage(tc.raw), "/p")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("config (-want +got):\n%s", d)
			}
		})
	}
}

func TestScrubEnv(t *testing.T) {
	in := []string{"PATH=/bin", "DATABRICKS_TOKEN=dapi-secret", "databricks_host=x", "MLFLOW_TRACKING_TOKEN=t",
		"MLFLOW_TRACKING_URI=databricks", "MLFLOW_REGISTRY_URI=databricks-uc", "PYTHONPATH=/x", "HOME=/root",
		"MLFLOW_HTTP_REQUEST_TIMEOUT=5"}
	want := []string{"PATH=/bin", "HOME=/root", "MLFLOW_HTTP_REQUEST_TIMEOUT=5"}
	if d := cmp.Diff(want, scrubEnv(in)); d != "" {
		t.Errorf("environment (-want +got):\n%s", d)
	}
}

func TestArtifactDir(t *testing.T) {
	store := Store{Dir: "/s/mlflow"}
	tests := map[string]struct {
		loc  string
		want string
		ok   bool
	}{
		"proxied": {"mlflow-artifacts:/1/models/m-1/artifacts", filepath.FromSlash("/s/mlflow/artifacts/1/models/m-1/artifacts"), true},
		"file":    {"file:///data/a", "/data/a", true},
		"path":    {"/data/b", "/data/b", true},
		"remote":  {"s3://bucket/x", "", false},
		"empty":   {"", "", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := artifactDir(store, tc.loc)
			if got != tc.want || ok != tc.ok {
				t.Errorf("artifactDir(%q) = %q, %v; want %q, %v", tc.loc, got, ok, tc.want, tc.ok)
			}
		})
	}
}
