package databricks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

func TestShortUserName(t *testing.T) {
	for _, c := range []struct{ user, display, want string }{
		{"jane.doe@example.com", "Jane Doe", "jane_doe"},
		{"John-Smith@Example.com", "", "john_smith"},
		{"3f2b1c4d-1111-2222-3333-444455556666", "ci-deployer", "ci_deployer"},
	} {
		if got := databricks.ShortUserName(c.user, c.display); got != c.want {
			t.Errorf("ShortUserName(%q, %q) = %q, want %q", c.user, c.display, got, c.want)
		}
	}
}

// TestPerUserRun runs a stage in per-user mode as two developers: each
// one's run is named after them and writes to their folders and schema.
func TestPerUserRun(t *testing.T) {
	r := newRig(t, emulator.Options{UserName: "jane.doe@example.com"})
	var cfg map[string]any
	if err := json.Unmarshal(r.config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["per_user"], cfg["per_user_schema"] = true, true
	r.config, _ = json.Marshal(cfg)
	ctx := context.Background()
	c, err := databricks.NewClient(&databricks.Config{}, dbtest.Env(r.e), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"jane_doe", "john"} {
		if i == 1 {
			r.e.SetUser("john@example.com")
			r.x = databricks.New(dbtest.Env(r.e)) // a new developer, a new pipectl
		}
		task := r.task("hello", "echo.py", map[string]string{"message": "hi"})
		task.RunID += user // each developer's own pipectl run
		res, _ := r.run(t, ctx, task)
		if res.Status != executor.Succeeded {
			t.Fatalf("%s: status %s: %+v", user, res.Status, res.Error)
		}
		ids := r.e.RunIDs()
		run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: ids[len(ids)-1]})
		if err != nil {
			t.Fatal(err)
		}
		if want := "[dev " + user + "] pipectl demo/hello on dev"; !strings.HasPrefix(run.RunName, want) {
			t.Errorf("run name %q, want it to start with %q", run.RunName, want)
		}
		sent := run.Tasks[0].NotebookTask.BaseParameters
		for k, v := range map[string]string{"experiment_root": "/Shared/pipectl/test/" + user, "uc_schema": "s_" + user,
			"data_root": "/Volumes/dev/s_" + user + "/v/data"} {
			if sent[k] != v {
				t.Errorf("%s: parameter %s = %q, want %q", user, k, sent[k], v)
			}
		}
		if want := "/Workspace/Shared/pipectl/test/" + user + "/.pipectl/code/"; !strings.HasPrefix(sent["project_root"], want) {
			t.Errorf("%s: project_root %q, want it under %s", user, sent["project_root"], want)
		}
	}
}
