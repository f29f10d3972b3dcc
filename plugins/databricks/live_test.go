package databricks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// TestLiveWorkspace runs the test notebooks on a real Databricks workspace.
// It runs only with PIPECTL_DATABRICKS_LIVE=1 and credentials in the
// environment (DATABRICKS_HOST plus a token, OAuth M2M, github-oidc or a
// profile). It uses serverless compute and needs, in Unity Catalog, a
// catalog, schema and Volume it may write to:
//
//	PIPECTL_DATABRICKS_LIVE_CATALOG  (default main)
//	PIPECTL_DATABRICKS_LIVE_SCHEMA   (default default)
//	PIPECTL_DATABRICKS_LIVE_VOLUME   (default pipectl)
//	PIPECTL_DATABRICKS_LIVE_ROOT     workspace folder (default /Workspace/Shared/pipectl-live-test)
//
// It imports the notebooks under the root, submits one run that succeeds
// and one that fails, deploys the demo pipeline as a paused job, and
// destroys it again.
func TestLiveWorkspace(t *testing.T) {
	if os.Getenv("PIPECTL_DATABRICKS_LIVE") != "1" {
		t.Skip("live Databricks test: set PIPECTL_DATABRICKS_LIVE=1 with DATABRICKS_HOST and credentials to run it")
	}
	if os.Getenv("DATABRICKS_HOST") == "" && os.Getenv("DATABRICKS_CONFIG_PROFILE") == "" {
		t.Skip("live Databricks test: PIPECTL_DATABRICKS_LIVE=1 but neither DATABRICKS_HOST nor DATABRICKS_CONFIG_PROFILE is set")
	}
	get := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	cfg := map[string]any{
		"workspace_root":  get("PIPECTL_DATABRICKS_LIVE_ROOT", "/Workspace/Shared/pipectl-live-test"),
		"catalog":         get("PIPECTL_DATABRICKS_LIVE_CATALOG", "main"),
		"schema":          get("PIPECTL_DATABRICKS_LIVE_SCHEMA", "default"),
		"volume":          get("PIPECTL_DATABRICKS_LIVE_VOLUME", "pipectl"),
		"experiment_root": "/Shared/pipectl-live-test",
		"source":          map[string]any{"kind": "workspace"},
		"compute":         map[string]any{"kind": "serverless"}, // the default environment version, as a spec gets it
	}
	raw, _ := json.Marshal(cfg)
	project := t.TempDir()
	if err := os.CopyFS(project, os.DirFS(dbtest.Project(t))); err != nil {
		t.Fatal(err)
	}
	x := databricks.New(os.Getenv)
	runID := fmt.Sprintf("live-%d", time.Now().Unix())
	task := func(stage, nb string, params map[string]string) executor.Task {
		return executor.Task{RunID: runID, Pipeline: "live", Target: "live", Stage: stage, Type: "custom", Notebook: "notebooks/" + nb,
			ProjectRoot: project, Params: params, Attempt: 1, Timeout: 30 * time.Minute, Config: raw}
	}
	ctx := context.Background()
	ds, err := x.Validate(ctx, executor.ValidateRequest{Pipeline: "live", Target: "live", ProjectRoot: project, Config: raw,
		Stages: []executor.StageSpec{{Name: "echo", Notebook: "notebooks/echo.py"}}})
	if err != nil || ds.HasErrors() {
		t.Fatalf("validate: %v %v", err, ds)
	}
	logf := func(ev executor.Event) {
		if ev.Link != nil {
			t.Logf("%s: %s", ev.Link.Label, ev.Link.URL)
		} else {
			t.Log(ev.Text)
		}
	}
	res, err := x.Run(ctx, task("echo", "echo.py", map[string]string{"message": "live"}), logf)
	if err != nil || res.Status != executor.Succeeded || res.Outputs["echo"] != "LIVE" {
		t.Fatalf("echo: %v %+v", err, res)
	}
	res, err = x.Run(ctx, task("fail", "fail.py", map[string]string{"message": "expected failure"}), logf)
	if err != nil || res.Status != executor.Failed || res.Error.Retryable || !strings.Contains(res.Error.Message, "expected failure") {
		t.Fatalf("fail: %v %+v", err, res)
	}
	t.Logf("failure as the user sees it: %s\n%s", res.Error.Message, res.Error.Detail)

	// Deploy the demo pipeline (paused: dev is a development target) twice,
	// then destroy it.
	spec := demoSpec
	for _, kv := range [][2]string{
		{`"/Workspace/Shared/pipectl/test"`, fmt.Sprintf("%q", cfg["workspace_root"])},
		{`*"dev" | string`, fmt.Sprintf("*%q | string", cfg["catalog"])},
		{`schema:          "s"`, fmt.Sprintf("schema:          %q", cfg["schema"])},
		{`volume:          "v"`, fmt.Sprintf("volume:          %q", cfg["volume"])},
	} {
		spec = strings.Replace(spec, kv[0], kv[1], 1)
	}
	if err := os.MkdirAll(project+"/specs", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(project+"/specs/p.cue", []byte(strings.Replace(spec, "MESSAGE", "live", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &deployRig{rig: &rig{project: project}}
	pl := r.plan(t, "dev")
	d := &databricks.Deployer{Env: os.Getenv}
	for i := range 2 {
		out, err := d.Deploy(ctx, pl, databricks.DeployOptions{ProjectRoot: project})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("deploy %d: %s job %d", i+1, out.Action, out.JobID)
		if i == 1 && out.Action != "unchanged" {
			t.Errorf("second deploy: %s, want unchanged\n%s\ndropped: %v", out.Action, out.Diff, out.Dropped)
		}
	}
	gone, err := d.Destroy(ctx, pl, false)
	if err != nil || len(gone.Removed) != 1 {
		t.Fatalf("destroy: %v %+v", err, gone)
	}
}
