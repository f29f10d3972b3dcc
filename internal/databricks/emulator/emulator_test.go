package emulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/config"
	"github.com/databricks/databricks-sdk-go/service/catalog"
	"github.com/databricks/databricks-sdk-go/service/compute"
	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/iam"
	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// noEnv keeps the process environment out of test clients.
type noEnv struct{}

func (noEnv) Name() string                   { return "none" }
func (noEnv) Configure(*config.Config) error { return nil }

func client(t *testing.T, e *emulator.Emulator, token string) *sdk.WorkspaceClient {
	t.Helper()
	w, err := sdk.NewWorkspaceClient(&sdk.Config{Host: e.URL, Token: token, Credentials: config.PatCredentials{},
		Loaders: []config.Loader{noEnv{}}, RetryTimeoutSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// apiErr asserts err is a Databricks API error with status and code.
func apiErr(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *apierr.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want API error %d %s", err, status, code)
	}
	if ae.StatusCode != status || ae.ErrorCode != code {
		t.Fatalf("got %d %s (%s), want %d %s", ae.StatusCode, ae.ErrorCode, ae.Message, status, code)
	}
}

// importProject imports the test project's notebooks under root, as the
// executor does.
func importProject(t *testing.T, w *sdk.WorkspaceClient, root string) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(dbtest.Project(t), "notebooks")
	if err := w.Workspace.Mkdirs(ctx, workspace.Mkdirs{Path: root + "/helper"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"echo.py", "fail.py", "sleep.py", "write.py", "helper/__init__.py"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		req := workspace.Import{Path: root + "/" + name, Content: base64.StdEncoding.EncodeToString(b), Format: workspace.ImportFormatAuto, Overwrite: true}
		if !strings.Contains(name, "/") {
			req.Path = strings.TrimSuffix(req.Path, ".py")
			req.Format, req.Language = workspace.ImportFormatSource, workspace.LanguagePython
		}
		if err := w.Workspace.Import(ctx, req); err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
	}
}

func waitRun(t *testing.T, w *sdk.WorkspaceClient, id int64) *jobs.Run {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		r, err := w.Jobs.GetRun(context.Background(), jobs.GetRunRequest{RunId: id})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.State == jobs.RunLifecycleStateV2StateTerminated {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %d did not terminate", id)
	return nil
}

func notebookTask(key, path string, params map[string]string, deps ...string) jobs.SubmitTask {
	t := jobs.SubmitTask{TaskKey: key, NotebookTask: &jobs.NotebookTask{NotebookPath: path, BaseParameters: params}}
	for _, d := range deps {
		t.DependsOn = append(t.DependsOn, jobs.TaskDependency{TaskKey: d})
	}
	return t
}

func TestAuth(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	ctx := context.Background()
	_, err := client(t, e, "wrong-token").Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared"})
	apiErr(t, err, http.StatusForbidden, "PERMISSION_DENIED")

	resp, err := http.Get(e.URL + "/api/2.0/workspace/get-status?path=/Shared")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error_code":"UNAUTHENTICATED"`) {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if _, err := client(t, e, dbtest.Token).Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared"}); err != nil {
		t.Fatal(err)
	}

	// The discovery document needs no credentials, as on a workspace: the
	// SDK reads it first and warns on stderr when it is refused.
	resp, err = http.Get(e.URL + "/.well-known/databricks-config")
	if err != nil {
		t.Fatal(err)
	}
	var meta config.HostMetadata
	err = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || meta.HostType != config.WorkspaceHost || meta.WorkspaceID == "" {
		t.Fatalf("discovery document: %d %+v %v", resp.StatusCode, meta, err)
	}
}

func TestWorkspace(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	content := base64.StdEncoding.EncodeToString([]byte("x = 1\n"))

	err := w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/missing/f.py", Content: content, Format: workspace.ImportFormatAuto})
	apiErr(t, err, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")

	if err := w.Workspace.Mkdirs(ctx, workspace.Mkdirs{Path: "/Workspace/Shared/a/b"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/a/b/f.py", Content: content, Format: workspace.ImportFormatAuto}); err != nil {
		t.Fatal(err)
	}
	err = w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/a/b/f.py", Content: content, Format: workspace.ImportFormatAuto})
	apiErr(t, err, http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS")
	nb := base64.StdEncoding.EncodeToString([]byte("# Databricks notebook source\nprint(1)\n"))
	if err := w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/a/nb", Content: nb, Format: workspace.ImportFormatSource, Language: workspace.LanguagePython}); err != nil {
		t.Fatal(err)
	}
	err = w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/a/nb2", Content: nb, Format: workspace.ImportFormatSource})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	info, err := w.Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Workspace/Shared/a/nb"})
	if err != nil {
		t.Fatal(err)
	}
	if info.ObjectType != workspace.ObjectTypeNotebook || info.Language != workspace.LanguagePython || info.Path != "/Workspace/Shared/a/nb" {
		t.Fatalf("get-status: %+v", info)
	}
	_, err = w.Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared/nope"})
	apiErr(t, err, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	if !errors.Is(err, apierr.ErrResourceDoesNotExist) {
		t.Fatalf("missing path is not ErrResourceDoesNotExist: %v", err)
	}

	objs, err := w.Workspace.ListAll(ctx, workspace.ListWorkspaceRequest{Path: "/Shared/a"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, o := range objs {
		paths = append(paths, o.Path+":"+string(o.ObjectType))
	}
	if got, want := strings.Join(paths, " "), "/Shared/a/b:DIRECTORY /Shared/a/nb:NOTEBOOK"; got != want {
		t.Fatalf("list: %s, want %s", got, want)
	}
	exp, err := w.Workspace.Export(ctx, workspace.ExportRequest{Path: "/Shared/a/b/f.py", Format: workspace.ExportFormatSource})
	if err != nil || exp.Content != content {
		t.Fatalf("export: %v %+v", err, exp)
	}

	err = w.Workspace.Delete(ctx, workspace.Delete{Path: "/Shared/a"})
	apiErr(t, err, http.StatusBadRequest, "DIRECTORY_NOT_EMPTY")
	if err := w.Workspace.Delete(ctx, workspace.Delete{Path: "/Shared/a", Recursive: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared/a/b/f.py"}); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	big := base64.StdEncoding.EncodeToString(make([]byte, 10<<20+1))
	err = w.Workspace.Import(ctx, workspace.Import{Path: "/Shared/big", Content: big, Format: workspace.ImportFormatAuto})
	apiErr(t, err, http.StatusBadRequest, "MAX_NOTEBOOK_SIZE_EXCEEDED")
}

func TestSubmitValidation(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	nb := &jobs.NotebookTask{NotebookPath: "/Shared/x"}
	tests := map[string]jobs.SubmitRun{
		"no tasks":             {},
		"bad task key":         {Tasks: []jobs.SubmitTask{{TaskKey: "a b", NotebookTask: nb}}},
		"duplicate key":        {Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: nb}, {TaskKey: "a", NotebookTask: nb}}},
		"long token":           {IdempotencyToken: strings.Repeat("x", 65), Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: nb}}},
		"relative path":        {Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: &jobs.NotebookTask{NotebookPath: "x"}}}},
		"unknown dependency":   {Tasks: []jobs.SubmitTask{notebookTask("a", "/Shared/x", nil, "zz")}},
		"cycle":                {Tasks: []jobs.SubmitTask{notebookTask("a", "/Shared/x", nil, "b"), notebookTask("b", "/Shared/x", nil, "a")}},
		"unknown environment":  {Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: nb, EnvironmentKey: "env"}}},
		"bad reference":        {Tasks: []jobs.SubmitTask{notebookTask("a", "/Shared/x", map[string]string{"p": "{{job.nope}}"})}},
		"reference to no task": {Tasks: []jobs.SubmitTask{notebookTask("a", "/Shared/x", map[string]string{"p": "{{tasks.b.values.x}}"})}},
		"two computes": {Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: nb, ExistingClusterId: "c", EnvironmentKey: "e"}},
			Environments: []jobs.JobEnvironment{{EnvironmentKey: "e", Spec: &compute.Environment{EnvironmentVersion: "3"}}}},
		"git without source": {Tasks: []jobs.SubmitTask{{TaskKey: "a", NotebookTask: &jobs.NotebookTask{NotebookPath: "x", Source: jobs.SourceGit}}}},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := w.Jobs.Submit(ctx, req)
			apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
		})
	}
	if n := len(e.RunIDs()); n != 0 {
		t.Fatalf("%d runs were created by invalid requests", n)
	}
	_, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: 42})
	if !errors.Is(err, apierr.ErrResourceDoesNotExist) {
		t.Fatalf("get of a missing run: %v, want ErrResourceDoesNotExist (via the SDK's override)", err)
	}
}

func TestSubmitRunsNotebooks(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	importProject(t, w, "/Shared/proj")
	req := jobs.SubmitRun{RunName: "two tasks", IdempotencyToken: "tok-1", Tasks: []jobs.SubmitTask{
		notebookTask("first", "/Workspace/Shared/proj/echo", map[string]string{"message": "hi", "root": "/Volumes/c/s/v/x", "run": "{{job.run_id}}"}),
		notebookTask("second", "/Shared/proj/echo", map[string]string{"message": "got {{tasks.first.values.echo}} n={{tasks.first.values.n}}", "upstream": "first"}, "first"),
	}}
	resp, err := w.Jobs.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.Jobs.Submit(ctx, req)
	if err != nil || again.RunId != resp.RunId {
		t.Fatalf("same idempotency token: run %d, want %d (%v)", again.RunId, resp.RunId, err)
	}
	run := waitRun(t, w, resp.RunId)
	if run.Status.TerminationDetails.Type != jobs.TerminationTypeTypeSuccess || run.State.ResultState != jobs.RunResultStateSuccess {
		t.Fatalf("run: %+v %+v", run.Status.TerminationDetails, run.State)
	}
	if !strings.HasPrefix(run.RunPageUrl, e.URL) || len(run.Tasks) != 2 {
		t.Fatalf("run page %q, %d tasks", run.RunPageUrl, len(run.Tasks))
	}
	_, err = w.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.RunId})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	outputs := map[string]map[string]any{}
	for _, task := range run.Tasks {
		out, err := w.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: task.RunId})
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Outputs map[string]any `json:"outputs"`
		}
		if err := json.Unmarshal([]byte(out.NotebookOutput.Result), &ev); err != nil {
			t.Fatalf("%s: %v in %q (log: %s)", task.TaskKey, err, out.NotebookOutput.Result, e.TaskLog(task.RunId))
		}
		outputs[task.TaskKey] = ev.Outputs
	}
	if got := outputs["second"]["echo"]; got != "GOT HI N=42" {
		t.Errorf("second echo = %v, want GOT HI N=42 (task values through {{tasks.first.values.*}})", got)
	}
	if got := outputs["second"]["from_upstream"]; got != "HI" {
		t.Errorf("second from_upstream = %v, want HI (task values through taskValues.get)", got)
	}
	var params map[string]string
	_ = json.Unmarshal([]byte(outputs["first"]["params"].(string)), &params)
	if params["root"] != "/Volumes/c/s/v/x" {
		t.Errorf("a /Volumes parameter comes back as %q, want it rewritten both ways", params["root"])
	}
	if params["run"] != jsonNumber(run.RunId) {
		t.Errorf("{{job.run_id}} = %q, want %d", params["run"], run.RunId)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTaskFaults(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	importProject(t, w, "/Shared/p")
	submit := func(nb string, params map[string]string) int64 {
		t.Helper()
		resp, err := w.Jobs.Submit(ctx, jobs.SubmitRun{Tasks: []jobs.SubmitTask{notebookTask("t", nb, params)}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.RunId
	}

	t.Run("failing notebook", func(t *testing.T) {
		run := waitRun(t, w, submit("/Shared/p/fail", map[string]string{"message": "bad input"}))
		td := run.Status.TerminationDetails
		if td.Type != jobs.TerminationTypeTypeClientError || td.Code != jobs.TerminationCodeCodeRunExecutionError || run.State.ResultState != jobs.RunResultStateFailed {
			t.Fatalf("termination %+v, state %+v", td, run.State)
		}
		out, err := w.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[0].RunId})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.Error, "bad input") || !strings.Contains(out.ErrorTrace, "explode") {
			t.Fatalf("error %q, trace %q", out.Error, out.ErrorTrace)
		}
	})
	t.Run("internal error", func(t *testing.T) {
		e.InjectTask(emulator.TaskFault{Kind: emulator.InternalError, Times: 1})
		run := waitRun(t, w, submit("/Shared/p/echo", nil))
		if run.State.LifeCycleState != jobs.RunLifeCycleStateInternalError || run.Status.TerminationDetails.Type != jobs.TerminationTypeTypeInternalError {
			t.Fatalf("state %+v %+v", run.State, run.Status.TerminationDetails)
		}
		// Times: 1 — the next run is fine.
		if run := waitRun(t, w, submit("/Shared/p/echo", nil)); run.State.ResultState != jobs.RunResultStateSuccess {
			t.Fatalf("second run: %+v", run.State)
		}
	})
	t.Run("stuck pending then cancelled", func(t *testing.T) {
		e.InjectTask(emulator.TaskFault{Kind: emulator.StuckPending, Times: 1})
		id := submit("/Shared/p/echo", nil)
		time.Sleep(200 * time.Millisecond)
		r, err := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
		if err != nil || r.Status.State != jobs.RunLifecycleStateV2StatePending || r.Tasks[0].Status.State != jobs.RunLifecycleStateV2StatePending {
			t.Fatalf("stuck run: %v %+v %+v", err, r.Status, r.Tasks[0].Status)
		}
		if _, err := w.Jobs.CancelRun(ctx, jobs.CancelRun{RunId: id}); err != nil {
			t.Fatal(err)
		}
		run := waitRun(t, w, id)
		if run.State.ResultState != jobs.RunResultStateCanceled || run.Status.TerminationDetails.Code != jobs.TerminationCodeCodeUserCanceled {
			t.Fatalf("cancelled run: %+v %+v", run.State, run.Status.TerminationDetails)
		}
	})
	t.Run("cancel kills the notebook", func(t *testing.T) {
		id := submit("/Shared/p/sleep", map[string]string{"seconds": "60"})
		deadline := time.Now().Add(30 * time.Second)
		for {
			r, _ := w.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: id})
			if r != nil && r.Tasks[0].Status.State == jobs.RunLifecycleStateV2StateRunning {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("sleep task never ran")
			}
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		if _, err := w.Jobs.CancelRun(ctx, jobs.CancelRun{RunId: id}); err != nil {
			t.Fatal(err)
		}
		run := waitRun(t, w, id)
		if run.State.ResultState != jobs.RunResultStateCanceled {
			t.Fatalf("state %+v", run.State)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("cancel took %s; the notebook process was not stopped", d)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		resp, err := w.Jobs.Submit(ctx, jobs.SubmitRun{TimeoutSeconds: 1, Tasks: []jobs.SubmitTask{notebookTask("t", "/Shared/p/sleep", map[string]string{"seconds": "30"})}})
		if err != nil {
			t.Fatal(err)
		}
		run := waitRun(t, w, resp.RunId)
		if run.State.ResultState != jobs.RunResultStateTimedout {
			t.Fatalf("state %+v", run.State)
		}
	})
	t.Run("missing notebook", func(t *testing.T) {
		run := waitRun(t, w, submit("/Shared/p/nope", nil))
		if run.Status.TerminationDetails.Code != jobs.TerminationCodeCodeResourceNotFound {
			t.Fatalf("termination %+v", run.Status.TerminationDetails)
		}
	})
	if active := e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("runs left active: %v", active)
	}
}

func TestHTTPFaults(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	ctx := context.Background()
	e.InjectHTTP(emulator.HTTPFault{Endpoint: "GET /api/2.0/workspace/get-status", Status: 429, Count: 2, RetryAfter: time.Second})
	resp, err := http.DefaultClient.Do(mustReq(t, e.URL+"/api/2.0/workspace/get-status?path=/Shared"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("fault: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The SDK retries 429s on its own; the second fault is ridden out.
	if _, err := client(t, e, dbtest.Token).Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: "/Shared"}); err != nil {
		t.Fatal(err)
	}
	if got := e.Calls()["GET /api/2.0/workspace/get-status"]; got != 3 {
		t.Fatalf("get-status calls = %d, want 3", got)
	}
}

func mustReq(t *testing.T, url string) *http.Request {
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+dbtest.Token)
	return r
}

func TestJobs(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	importProject(t, w, "/Shared/p")
	settings := jobs.CreateJob{Name: "[pipectl] demo", Tags: map[string]string{"k": "v"}, MaxConcurrentRuns: 1,
		Schedule: &jobs.CronSchedule{QuartzCronExpression: "0 0 3 1 * ?", TimezoneId: "UTC", PauseStatus: jobs.PauseStatusPaused},
		Tasks: []jobs.Task{
			{TaskKey: "a", NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/p/echo", BaseParameters: map[string]string{"message": "{{job.start_time.iso_date}}"}}},
			{TaskKey: "b", DependsOn: []jobs.TaskDependency{{TaskKey: "a"}}, NotebookTask: &jobs.NotebookTask{NotebookPath: "/Shared/p/echo",
				BaseParameters: map[string]string{"message": "{{tasks.a.values.echo}}"}}},
		}}
	created, err := w.Jobs.Create(ctx, settings)
	if err != nil {
		t.Fatal(err)
	}
	bad := settings
	bad.Schedule = &jobs.CronSchedule{QuartzCronExpression: "0 3 1 * *", TimezoneId: "UTC"}
	_, err = w.Jobs.Create(ctx, bad)
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	list, err := w.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: "[PIPECTL] Demo"})
	if err != nil || len(list) != 1 || list[0].JobId != created.JobId || list[0].Settings.Tasks != nil {
		t.Fatalf("list by name: %v %+v", err, list)
	}
	got, err := w.Jobs.Get(ctx, jobs.GetJobRequest{JobId: created.JobId})
	if err != nil || got.Settings.Tags["k"] != "v" || len(got.Settings.Tasks) != 2 {
		t.Fatalf("get: %v %+v", err, got)
	}
	got.Settings.Tags["k"] = "w"
	if err := w.Jobs.Reset(ctx, jobs.ResetJob{JobId: created.JobId, NewSettings: *got.Settings}); err != nil {
		t.Fatal(err)
	}
	if again, _ := w.Jobs.Get(ctx, jobs.GetJobRequest{JobId: created.JobId}); again.Settings.Tags["k"] != "w" {
		t.Fatal("reset did not replace the settings")
	}
	now, err := w.Jobs.RunNow(ctx, jobs.RunNow{JobId: created.JobId})
	if err != nil {
		t.Fatal(err)
	}
	run := waitRun(t, w, now.RunId)
	if run.State.ResultState != jobs.RunResultStateSuccess || run.JobId != created.JobId || run.RunType != jobs.RunTypeJobRun {
		t.Fatalf("run-now: %+v", run.State)
	}
	out, err := w.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[1].RunId})
	if err != nil {
		t.Fatal(err)
	}
	today := time.Unix(run.StartTime/1000, 0).UTC().Format("2006-01-02")
	if !strings.Contains(out.NotebookOutput.Result, `"echo": "`+today+`"`) {
		t.Fatalf("b's output %s does not carry a's task value %s", out.NotebookOutput.Result, today)
	}
	if err := w.Jobs.Delete(ctx, jobs.DeleteJob{JobId: created.JobId}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Jobs.Get(ctx, jobs.GetJobRequest{JobId: created.JobId})
	if !errors.Is(err, apierr.ErrResourceDoesNotExist) {
		t.Fatalf("get after delete: %v", err)
	}
	err = w.Jobs.Delete(ctx, jobs.DeleteJob{JobId: created.JobId})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
}

func TestFilesAndModels(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	p := "/Volumes/dev/sentiment/pipectl/raw/x.csv"
	if err := w.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(strings.NewReader("a,b\n"))}); err != nil {
		t.Fatal(err)
	}
	err := w.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(strings.NewReader("a,b\n"))})
	apiErr(t, err, http.StatusConflict, "ALREADY_EXISTS")
	md, err := w.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: p})
	if err != nil || md.ContentLength != 4 {
		t.Fatalf("metadata: %v %+v", err, md)
	}
	if err := w.Files.GetDirectoryMetadata(ctx, files.GetDirectoryMetadataRequest{DirectoryPath: "/Volumes/dev/sentiment/pipectl/raw"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Files.GetDirectoryMetadata(ctx, files.GetDirectoryMetadataRequest{DirectoryPath: "/Volumes/dev/sentiment/pipectl/nope"}); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("missing directory: %v", err)
	}
	local, err := e.VolumePath(p)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(local); err != nil || string(b) != "a,b\n" {
		t.Fatalf("volume file on disk: %v %q", err, b)
	}
	if _, err := e.VolumePath("/Volumes/dev/../../etc"); err == nil {
		t.Fatal("a path with .. was accepted")
	}
	_, err = w.ModelVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: "dev.sentiment.m", Version: 1})
	apiErr(t, err, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	_, err = w.ModelVersions.Get(ctx, catalog.GetModelVersionRequest{FullName: "m", Version: 1})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
}

// TestUnityCatalogAndPermissions covers what pipectl setup and deploy's
// operations settings call: SCIM /Me per user, catalogs, schemas and
// volumes, job permissions and partial job updates.
func TestUnityCatalogAndPermissions(t *testing.T) {
	e := dbtest.Emulator(t, emulator.Options{Python: dbtest.NoPython, Catalogs: []string{"dev"}, UserName: "jane.doe@example.com"})
	w := client(t, e, dbtest.Token)
	ctx := context.Background()
	me, err := w.CurrentUser.Me(ctx, iam.MeRequest{})
	if err != nil || me.UserName != "jane.doe@example.com" {
		t.Fatalf("me: %v %+v", err, me)
	}
	e.SetUser("john@example.com")
	if me, _ = w.CurrentUser.Me(ctx, iam.MeRequest{}); me.UserName != "john@example.com" {
		t.Fatalf("me after SetUser: %+v", me)
	}
	if _, err := w.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: "dev"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Catalogs.Get(ctx, catalog.GetCatalogRequest{Name: "prod"})
	apiErr(t, err, http.StatusNotFound, "CATALOG_DOES_NOT_EXIST")
	_, err = w.Schemas.Get(ctx, catalog.GetSchemaRequest{FullName: "dev.s"})
	apiErr(t, err, http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST")
	_, err = w.Volumes.Create(ctx, catalog.CreateVolumeRequestContent{CatalogName: "dev", SchemaName: "s", Name: "v", VolumeType: catalog.VolumeTypeManaged})
	apiErr(t, err, http.StatusNotFound, "SCHEMA_DOES_NOT_EXIST")
	if _, err := w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "dev", Name: "s"}); err != nil {
		t.Fatal(err)
	}
	_, err = w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "dev", Name: "s"})
	apiErr(t, err, http.StatusConflict, "SCHEMA_ALREADY_EXISTS")
	_, err = w.Schemas.Create(ctx, catalog.CreateSchema{CatalogName: "prod", Name: "s"})
	apiErr(t, err, http.StatusNotFound, "CATALOG_DOES_NOT_EXIST")
	if _, err := w.Volumes.Create(ctx, catalog.CreateVolumeRequestContent{CatalogName: "dev", SchemaName: "s", Name: "v", VolumeType: catalog.VolumeTypeManaged}); err != nil {
		t.Fatal(err)
	}
	v, err := w.Volumes.Read(ctx, catalog.ReadVolumeRequest{Name: "dev.s.v"})
	if err != nil || v.VolumeType != catalog.VolumeTypeManaged || v.FullName != "dev.s.v" {
		t.Fatalf("volume: %v %+v", err, v)
	}
	if err := w.Files.Upload(ctx, files.UploadRequest{FilePath: "/Volumes/dev/s/v/x.csv", Contents: io.NopCloser(strings.NewReader("a\n"))}); err != nil {
		t.Fatal(err)
	}

	created, err := w.Jobs.Create(ctx, jobs.CreateJob{Name: "j"})
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(created.JobId, 10)
	_, err = w.Jobs.SetPermissions(ctx, jobs.JobPermissionsRequest{JobId: id, AccessControlList: []jobs.JobAccessControlRequest{
		{GroupName: "g", PermissionLevel: jobs.JobPermissionLevelIsOwner}}})
	apiErr(t, err, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	if _, err := w.Jobs.SetPermissions(ctx, jobs.JobPermissionsRequest{JobId: id, AccessControlList: []jobs.JobAccessControlRequest{
		{GroupName: "data-eng", PermissionLevel: jobs.JobPermissionLevelCanManageRun}}}); err != nil {
		t.Fatal(err)
	}
	p, err := w.Jobs.GetPermissions(ctx, jobs.GetJobPermissionsRequest{JobId: id})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.AccessControlList {
		got = append(got, a.UserName+a.GroupName+"="+string(a.AllPermissions[0].PermissionLevel))
	}
	if want := "john@example.com=IS_OWNER data-eng=CAN_MANAGE_RUN admins=CAN_MANAGE"; strings.Join(got, " ") != want {
		t.Fatalf("permissions %q, want %q", strings.Join(got, " "), want)
	}
	if err := w.Jobs.Update(ctx, jobs.UpdateJob{JobId: created.JobId, NewSettings: &jobs.JobSettings{
		EmailNotifications: &jobs.JobEmailNotifications{OnFailure: []string{"x@example.com"}}}}); err != nil {
		t.Fatal(err)
	}
	j, err := w.Jobs.Get(ctx, jobs.GetJobRequest{JobId: created.JobId})
	if err != nil || j.Settings.Name != "j" || j.Settings.EmailNotifications == nil || j.Settings.EmailNotifications.OnFailure[0] != "x@example.com" {
		t.Fatalf("after update: %v %+v", err, j.Settings)
	}
	if e.Writes() != 10 { // rejected calls count too
		t.Fatalf("writes %d, want 10 (%v)", e.Writes(), e.Calls())
	}
}
