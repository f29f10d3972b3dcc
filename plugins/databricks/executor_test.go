package databricks_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/databricks/databricks-sdk-go/service/workspace"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

const testConfig = `{"workspace_root": "/Workspace/Shared/pipectl/test", "source": {"kind": "workspace"},
	"compute": {"kind": "serverless", "environment_version": "3"}, "catalog": "dev", "schema": "s", "volume": "v",
	"experiment_root": "/Shared/pipectl/test", "max_concurrent_runs": 1}`

// rig is an emulator, an executor pointed at it and a copy of the test
// project.
type rig struct {
	e       *emulator.Emulator
	x       *databricks.Executor
	project string
	config  json.RawMessage
}

func newRig(t *testing.T, opts emulator.Options, env ...string) *rig {
	t.Helper()
	return newRigTB(t, opts, env...)
}

func newRigTB(t testing.TB, opts emulator.Options, env ...string) *rig {
	t.Helper()
	e := dbtest.Emulator(t, opts)
	project := filepath.Join(t.TempDir(), "project")
	if err := os.CopyFS(project, os.DirFS(dbtest.Project(t))); err != nil {
		t.Fatal(err)
	}
	x := databricks.New(dbtest.Env(e, env...))
	return &rig{e: e, x: x, project: project, config: json.RawMessage(testConfig)}
}

func (r *rig) task(stage, notebook string, params map[string]string) executor.Task {
	return executor.Task{RunID: "20240101-000000-abcd", Pipeline: "demo", Target: "dev", Stage: stage, Type: "custom",
		Notebook: "notebooks/" + notebook, ProjectRoot: r.project, Params: params, Attempt: 1, Timeout: time.Minute,
		Config: r.config, CacheKey: "k", GitCommit: "0123456789abcdef0123456789abcdef01234567"}
}

// events collects a run's events, safe for concurrent use.
type events struct {
	mu  sync.Mutex
	all []executor.Event
}

func (ev *events) sink(e executor.Event) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.all = append(ev.all, e)
}

func (ev *events) list() []executor.Event {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]executor.Event(nil), ev.all...)
}

func (r *rig) run(t *testing.T, ctx context.Context, task executor.Task) (executor.Result, *events) {
	t.Helper()
	ev := &events{}
	res, err := r.x.Run(ctx, task, ev.sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, ev
}

func TestRunStage(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx := context.Background()
	res, ev := r.run(t, ctx, r.task("hello", "echo.py", map[string]string{"message": "hi", "data_root": "spec must not win"}))
	if res.Status != executor.Succeeded {
		t.Fatalf("status %s: %+v", res.Status, res.Error)
	}
	if res.Outputs["echo"] != "HI" || res.Outputs["n"] != "42" || res.Metrics["half"] != 0.5 {
		t.Fatalf("outputs %v metrics %v", res.Outputs, res.Metrics)
	}
	// What the executor sent, as Databricks recorded it.
	c, err := databricks.NewClient(&databricks.Config{}, dbtest.Env(r.e), nil)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: r.e.RunIDs()[0]})
	if err != nil {
		t.Fatal(err)
	}
	sent := run.Tasks[0].NotebookTask.BaseParameters
	want := map[string]string{
		"message": "hi", "data_root": "/Volumes/dev/s/v/data", "output_root": "/Volumes/dev/s/v/predictions",
		"mlflow_tracking_uri": "databricks", "mlflow_registry_uri": "databricks-uc", "uc_catalog": "dev", "uc_schema": "s",
		"experiment_root": "/Shared/pipectl/test", "pipectl_run_id": "20240101-000000-abcd", "pipectl_stage": "hello",
		"pipectl_pipeline": "demo", "pipectl_target": "dev", "git_commit": "0123456789abcdef0123456789abcdef01234567",
	}
	for k, v := range want {
		if sent[k] != v {
			t.Errorf("parameter %s = %q, want %q", k, sent[k], v)
		}
	}
	if !strings.HasPrefix(sent["project_root"], "/Workspace/Shared/pipectl/test/.pipectl/code/") {
		t.Errorf("project_root = %q, want the imported code folder", sent["project_root"])
	}
	if run.Tasks[0].EnvironmentKey != "pipectl" || run.Tasks[0].TimeoutSeconds != 60 {
		t.Errorf("task compute/timeout: %q %d", run.Tasks[0].EnvironmentKey, run.Tasks[0].TimeoutSeconds)
	}
	// What the notebook saw: the /Volumes paths came back unchanged through
	// the emulator's mount.
	var params map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["params"]), &params); err != nil {
		t.Fatal(err)
	}
	if params["data_root"] != "/Volumes/dev/s/v/data" || params["message"] != "hi" {
		t.Errorf("the notebook saw %v", params)
	}
	evs := ev.list()
	var link *executor.Link
	for _, e := range evs {
		if e.Kind == executor.EventLink {
			link = e.Link
			break
		}
		if e.Kind == executor.EventProgress {
			t.Fatalf("progress %q came before the run page link", e.Text)
		}
	}
	if link == nil || !strings.HasPrefix(link.URL, r.e.URL+"/?o=") {
		t.Fatalf("no run page link event: %+v", evs)
	}
	calls := r.e.Calls()
	if calls["POST /api/2.2/jobs/runs/submit"] != 1 || calls["GET /api/2.2/jobs/runs/get-output"] != 1 {
		t.Fatalf("calls: %v", calls)
	}
	// The code was imported once, without its tests.
	// echo, fail, sleep, write, helper/__init__.py, requirements.txt and the
	// completion marker; not tests/.
	if got := calls["POST /api/2.0/workspace/import"]; got != 7 {
		t.Errorf("%d imports, want 7", got)
	}
	assertNoTests(t, r.e)

	// Same run, stage and attempt: the idempotency token re-attaches to the
	// same Databricks run instead of starting another.
	r.e.ResetCalls()
	x2 := databricks.New(dbtest.Env(r.e))
	res2, err := x2.Run(ctx, r.task("hello", "echo.py", map[string]string{"message": "hi"}), func(executor.Event) {})
	if err != nil || res2.Status != executor.Succeeded || res2.Links[0] != res.Links[0] {
		t.Fatalf("second run: %v %+v %v vs %v", err, res2.Error, res2.Links, res.Links)
	}
	if got := r.e.Calls()["POST /api/2.0/workspace/import"]; got != 0 {
		t.Fatalf("a fresh executor imported %d files again; the content-addressed folder exists", got)
	}
	if n := len(r.e.RunIDs()); n != 1 {
		t.Fatalf("%d runs exist, want 1", n)
	}
}

// assertNoTests checks that tests and caches stayed out of the workspace.
func assertNoTests(t *testing.T, e *emulator.Emulator) {
	t.Helper()
	w, err := databricks.NewClient(&databricks.Config{}, dbtest.Env(e), nil)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(p string)
	seen := 0
	walk = func(p string) {
		objs, err := w.W.Workspace.ListAll(context.Background(), workspaceList(p))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			seen++
			if strings.Contains(o.Path, "/tests") || strings.Contains(o.Path, "__pycache__") {
				t.Errorf("%s was imported", o.Path)
			}
			if o.ObjectType == "DIRECTORY" {
				walk(o.Path)
			}
		}
	}
	walk("/Shared/pipectl/test/.pipectl/code")
	if seen < 7 {
		t.Errorf("only %d objects in the code folder", seen)
	}
}

func TestFailingNotebook(t *testing.T) {
	r := newRig(t, emulator.Options{})
	res, _ := r.run(t, context.Background(), r.task("broken", "fail.py", map[string]string{"message": "the input is bad"}))
	if res.Status != executor.Failed || res.Error == nil || res.Error.Retryable {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Error.Message, "ValueError: the input is bad") || !strings.Contains(res.Error.Message, "RUN_EXECUTION_ERROR") {
		t.Errorf("message %q lacks the notebook's error", res.Error.Message)
	}
	if !strings.Contains(res.Error.Detail, "explode") || !strings.Contains(res.Error.Detail, "raise ValueError(message)") {
		t.Errorf("detail %q lacks the trace tail", res.Error.Detail)
	}
}

func TestRetryableTerminations(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx := context.Background()
	for _, kind := range []emulator.FaultKind{emulator.InternalError, emulator.CloudFailure} {
		r.e.InjectTask(emulator.TaskFault{Kind: kind, Times: 1})
		task := r.task("flaky", "echo.py", nil)
		task.RunID = "run-" + string(rune('a'+kind))
		res, _ := r.run(t, ctx, task)
		if res.Status != executor.Failed || !res.Error.Retryable {
			t.Fatalf("%v: %+v", kind, res.Error)
		}
		task.Attempt = 2 // the runner's retry: a new idempotency token
		if res, _ := r.run(t, ctx, task); res.Status != executor.Succeeded {
			t.Fatalf("%v retry: %+v", kind, res.Error)
		}
	}
}

func TestClientErrorsAreFinal(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx := context.Background()
	res, _ := r.run(t, ctx, r.task("bad key!", "echo.py", nil)) // Databricks refuses the task key
	if res.Status != executor.Failed || res.Error.Retryable || !strings.Contains(res.Error.Message, "INVALID_PARAMETER_VALUE") && !strings.Contains(res.Error.Message, "task_key") {
		t.Fatalf("invalid request: %+v", res.Error)
	}
	x := databricks.New(dbtest.Env(r.e, "DATABRICKS_TOKEN=dapi-not-the-right-one"))
	res, err := x.Run(ctx, r.task("ok", "echo.py", nil), func(executor.Event) {})
	if err != nil || res.Status != executor.Failed || res.Error.Retryable || !strings.Contains(res.Error.Message, "Invalid access token") {
		t.Fatalf("wrong token: %v %+v", err, res.Error)
	}
	if strings.Contains(res.Error.Message, "dapi-not-the-right-one") {
		t.Fatalf("the token leaked: %s", res.Error.Message)
	}
}

func TestCancelStopsTheRemoteRun(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ev := &events{}
	done := make(chan executor.Result)
	go func() {
		res, err := r.x.Run(ctx, r.task("long", "sleep.py", map[string]string{"seconds": "120"}), ev.sink)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	deadline := time.After(time.Minute)
	for running := false; !running; {
		select {
		case <-deadline:
			t.Fatal("the notebook never started")
		case <-time.After(50 * time.Millisecond):
		}
		for _, e := range ev.list() {
			running = running || (e.Kind == executor.EventProgress && strings.HasSuffix(e.Text, "RUNNING"))
		}
	}
	cancel()
	var res executor.Result
	select {
	case res = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after cancellation")
	}
	if res.Status != executor.Cancelled {
		t.Fatalf("status %s: %+v", res.Status, res.Error)
	}
	if active := r.e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("Run returned while runs %v were still active", active)
	}
	if r.e.Calls()["POST /api/2.2/jobs/runs/cancel"] != 1 {
		t.Fatalf("calls: %v", r.e.Calls())
	}
}

func TestBurstsAreRiddenOut(t *testing.T) {
	r := newRig(t, emulator.Options{})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "POST /api/2.2/jobs/runs/submit", Status: 503, Count: 2, RetryAfter: time.Second})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "GET /api/2.2/jobs/runs/get", Status: 429, Count: 3, RetryAfter: time.Second})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "GET /api/2.2/jobs/runs/get-output", Status: 503, Count: 2})
	start := time.Now()
	res, ev := r.run(t, context.Background(), r.task("busy", "echo.py", map[string]string{"message": "x"}))
	if res.Status != executor.Succeeded {
		t.Fatalf("%+v", res.Error)
	}
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("finished in %s: the Retry-After waits (2+3 s) were not honoured", d)
	}
	if n := len(r.e.RunIDs()); n != 1 {
		t.Fatalf("%d runs: a retried submit started a second run", n)
	}
	notices := 0
	for _, e := range ev.list() {
		if strings.Contains(e.Text, "retrying in") {
			notices++
		}
	}
	if notices < 5 {
		t.Errorf("%d retry notices, want one per 429/503 answer (7)", notices)
	}
}

func TestStuckPendingIsCancelled(t *testing.T) {
	r := newRig(t, emulator.Options{})
	r.e.InjectTask(emulator.TaskFault{Kind: emulator.StuckPending, Times: 1})
	task := r.task("stuck", "echo.py", nil)
	task.Timeout = 3 * time.Second
	res, _ := r.run(t, context.Background(), task)
	if res.Status != executor.Failed || !res.Error.Retryable || !strings.Contains(res.Error.Message, "PENDING") {
		t.Fatalf("%s %+v", res.Status, res.Error)
	}
	if active := r.e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("runs %v left active", active)
	}
}

func TestCheckOutputs(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx := context.Background()
	task := r.task("write", "write.py", map[string]string{"name": "v1"})
	res, _ := r.run(t, ctx, task)
	if res.Status != executor.Succeeded {
		t.Fatalf("%+v", res.Error)
	}
	if res.Outputs["data_path"] != "/Volumes/dev/s/v/data/v1" {
		t.Fatalf("data_path = %q, want the /Volumes path", res.Outputs["data_path"])
	}
	check, err := r.x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: res.Outputs})
	if err != nil || !check.Exists {
		t.Fatalf("fresh outputs: %v %+v", err, check)
	}
	local, _ := r.e.VolumePath(res.Outputs["predictions_path"])
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	check, err = r.x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: res.Outputs})
	if err != nil || check.Exists || !strings.Contains(check.Reason, "predictions") {
		t.Fatalf("deleted predictions: %v %+v", err, check)
	}
	// A Delta table (engine "spark") is a directory: it checks out while
	// its _delta_log is there.
	table := "/Volumes/dev/s/v/predictions/run1/predictions.delta"
	tableLocal, _ := r.e.VolumePath(table)
	if err := os.MkdirAll(filepath.Join(tableLocal, "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	delta := map[string]string{"predictions_path": table}
	check, err = r.x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: delta})
	if err != nil || !check.Exists {
		t.Fatalf("predictions table: %v %+v", err, check)
	}
	if err := os.RemoveAll(filepath.Join(tableLocal, "_delta_log")); err != nil {
		t.Fatal(err)
	}
	check, err = r.x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: delta})
	if err != nil || check.Exists || !strings.Contains(check.Reason, "predictions table") {
		t.Fatalf("table without its log: %v %+v", err, check)
	}
	check, err = r.x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: map[string]string{"model_name": "dev.s.m", "model_version": "3"}})
	if err != nil || check.Exists || !strings.Contains(check.Reason, "dev.s.m/3") {
		t.Fatalf("missing model version: %v %+v", err, check)
	}
}

func TestGitSource(t *testing.T) {
	r := newRig(t, emulator.Options{})
	repo := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(repo, os.DirFS(r.project)); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet")
	git("add", ".")
	git("commit", "--quiet", "-m", "test project")
	sha := git("rev-parse", "HEAD")
	r.config = json.RawMessage(strings.Replace(testConfig, `"kind": "workspace"`, `"kind": "git"`, 1))

	x := databricks.New(dbtest.Env(r.e))
	res, err := x.Run(context.Background(), r.task("g", "echo.py", nil), func(executor.Event) {})
	if err != nil || res.Status != executor.Failed || !strings.Contains(res.Error.Message, "GITHUB_REPOSITORY") {
		t.Fatalf("no repository known: %v %+v", err, res.Error)
	}

	x = databricks.New(dbtest.Env(r.e, "GITHUB_SERVER_URL=file://"+filepath.Dir(repo), "GITHUB_REPOSITORY=repo", "GITHUB_SHA="+sha))
	res, err = x.Run(context.Background(), r.task("g", "echo.py", map[string]string{"message": "from git"}), func(executor.Event) {})
	if err != nil || res.Status != executor.Succeeded || res.Outputs["echo"] != "FROM GIT" {
		t.Fatalf("git run: %v %+v %v", err, res.Error, res.Outputs)
	}
	var params map[string]string
	_ = json.Unmarshal([]byte(res.Outputs["params"]), &params)
	if params["git_commit"] != sha || params["project_root"] != "" {
		t.Errorf("git_commit %q project_root %q", params["git_commit"], params["project_root"])
	}
	if got := r.e.Calls()["POST /api/2.0/workspace/import"]; got != 0 {
		t.Errorf("a git source imported %d files", got)
	}
}

func TestValidate(t *testing.T) {
	project := dbtest.Project(t)
	x := databricks.New(func(string) string { return "" })
	tests := map[string]struct {
		config string
		want   []string
	}{
		"fine with a host": {config: strings.Replace(testConfig, `"workspace_root"`, `"host": "https://x.cloud.databricks.com", "workspace_root"`, 1)},
		"no workspace":     {config: testConfig, want: []string{"no Databricks workspace is configured"}},
		"bad names and roots": {
			config: `{"host": "https://x", "workspace_root": "/Workspace", "catalog": "a b", "schema": "s", "volume": "../v", "experiment_root": "rel", "source": {"kind": "workspace"}, "compute": {"kind": "serverless"}}`,
			want:   []string{"workspace_root must be a folder", `catalog "a b"`, `volume "../v"`, `experiment_root "rel"`}},
		"git without env": {config: strings.Replace(strings.Replace(testConfig, `"kind": "workspace"`, `"kind": "git"`, 1), `"workspace_root"`, `"host": "https://x", "workspace_root"`, 1),
			want: []string{"no repository URL is known"}},
		"cluster without id": {config: strings.Replace(strings.Replace(testConfig, `"kind": "serverless", `, `"kind": "existing_cluster", `, 1), `"workspace_root"`, `"host": "https://x", "workspace_root"`, 1),
			want: []string{"existing_cluster_id is empty"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ds, err := x.Validate(context.Background(), executor.ValidateRequest{Pipeline: "p", Target: "dev", ProjectRoot: project,
				Config: json.RawMessage(tc.config), Stages: []executor.StageSpec{{Name: "a", Notebook: "notebooks/echo.py"}, {Name: "b", Notebook: "notebooks/helper/__init__.py"}}})
			if err != nil {
				t.Fatal(err)
			}
			text := ""
			for _, d := range ds {
				text += d.Path + ": " + d.Summary + "\n"
			}
			want := append(tc.want, `notebook notebooks/helper/__init__.py does not start with "# Databricks notebook source"`)
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, text)
				}
			}
			if !strings.Contains(text, "pipelines.p.targets.dev.databricks") {
				t.Errorf("diagnostics do not name the field:\n%s", text)
			}
		})
	}
}

// TestTokenNeverLeaks runs stages that succeed, fail and cannot
// authenticate, and scans every event, result and error for the token.
func TestTokenNeverLeaks(t *testing.T) {
	r := newRig(t, emulator.Options{})
	ctx := context.Background()
	var written []string
	record := func(v any) {
		b, _ := json.Marshal(v)
		written = append(written, string(b))
	}
	for _, tc := range []struct {
		notebook string
		params   map[string]string
		env      []string
	}{
		{notebook: "echo.py", params: map[string]string{"message": "x"}},
		{notebook: "fail.py", params: map[string]string{"message": "token is " + dbtest.Token}}, // a notebook that prints it
		{notebook: "echo.py", env: []string{"DATABRICKS_TOKEN=dapi-wrong-" + dbtest.Token}},
		{notebook: "echo.py", env: []string{"DATABRICKS_HOST=http://127.0.0.1:1"}},
	} {
		x := databricks.New(dbtest.Env(r.e, tc.env...))
		ev := &events{}
		// The SDK retries a refused connection for minutes; a few seconds
		// show what the user would see.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := x.Run(ctx, r.task("s", tc.notebook, tc.params), ev.sink)
		record(res)
		record(ev.list())
		if err != nil {
			written = append(written, err.Error())
		}
		chk, err := x.CheckOutputs(ctx, executor.CheckRequest{Task: r.task("s", tc.notebook, nil), Outputs: map[string]string{"data_path": "/Volumes/dev/s/v/x"}})
		record(chk)
		if err != nil {
			written = append(written, err.Error())
		}
	}
	for _, w := range written {
		if strings.Contains(w, dbtest.Token) {
			t.Fatalf("the token leaked: %s", w)
		}
	}
	if len(written) < 8 {
		t.Fatalf("scanned only %d records", len(written))
	}
}

func workspaceList(p string) workspace.ListWorkspaceRequest {
	return workspace.ListWorkspaceRequest{Path: p}
}

// Volume inputs are fingerprinted by the Files API's metadata (size and
// last-modified; the API sends no ETag), directories by their listing,
// without reading any content.
func TestFingerprintVolumeFiles(t *testing.T) {
	r := newRig(t, emulator.Options{Python: dbtest.NoPython})
	ctx := context.Background()
	put := func(p, content string, mod time.Time) {
		t.Helper()
		local, err := r.e.VolumePath(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(local, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	fingerprint := func(refs ...string) []executor.Fingerprint {
		t.Helper()
		var inputs []executor.Input
		for _, ref := range refs {
			inputs = append(inputs, executor.Input{Param: "source", Kind: executor.InputFile, Ref: ref})
		}
		res, err := r.x.Fingerprint(ctx, executor.FingerprintRequest{Task: r.task("data", "write.py", nil), Inputs: inputs})
		if err != nil || len(res.Fingerprints) != len(refs) {
			t.Fatalf("fingerprint: %v %+v", err, res)
		}
		return res.Fingerprints
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	put("/Volumes/dev/s/v/raw/a.csv", "20 rows", t0)
	put("/Volumes/dev/s/v/raw/dir/b.csv", "x", t0)
	first := fingerprint("/Volumes/dev/s/v/raw/a.csv", "/Volumes/dev/s/v/raw/dir")
	if first[0].Value != "files-api:size=7,last-modified=Fri, 02 Jan 2026 03:04:05 GMT" || !strings.HasPrefix(first[1].Value, "files-api-dir:") {
		t.Fatalf("fingerprints %+v", first)
	}
	r.e.ResetCalls()
	if again := fingerprint("/Volumes/dev/s/v/raw/a.csv"); again[0].Value != first[0].Value {
		t.Errorf("unchanged file: %+v", again)
	}
	if calls := r.e.Calls(); calls["HEAD /api/2.0/fs/files"] != 1 || calls["GET /api/2.0/fs/files"] != 0 {
		t.Errorf("calls %v: want one HEAD and no download", calls)
	}
	// Replaced at the same path, a second later.
	put("/Volumes/dev/s/v/raw/a.csv", "10 rows", t0.Add(time.Second))
	put("/Volumes/dev/s/v/raw/dir/c.csv", "y", t0)
	changed := fingerprint("/Volumes/dev/s/v/raw/a.csv", "/Volumes/dev/s/v/raw/dir")
	if changed[0].Value == first[0].Value || changed[1].Value == first[1].Value {
		t.Errorf("changed inputs kept their fingerprints: %+v", changed)
	}
	// What cannot be fingerprinted has no value: the stage always runs.
	for _, ref := range []string{"/Volumes/dev/s/v/raw/gone.csv", "data/sample.csv"} {
		if f := fingerprint(ref)[0]; f.Value != "" || f.Detail == "" {
			t.Errorf("%s: %+v", ref, f)
		}
	}
}

// The project's package reaches notebooks as a wheel the task installs,
// never from the notebook's folder: pipectl builds and uploads it once
// (content-addressed), leaves the package out of the imported code, and
// the emulator pip-installs the task's libraries (clusters) or
// environment dependencies (serverless) for real. The notebook reports
// where it imported the package from.
func TestProjectPackageShipsAsWheel(t *testing.T) {
	r := newRig(t, emulator.Options{})
	write := func(rel, text string) {
		if err := os.WriteFile(filepath.Join(r.project, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("notebooks/pyproject.toml", "[project]\nname = \"helper\"\nversion = \"1.2.0\"\n")
	write("notebooks/where.py", "# Databricks notebook source\nimport json\n\nimport helper\n\n"+
		"dbutils.notebook.exit(json.dumps({\"outputs\": {\"file\": helper.__file__, \"shout\": helper.shout(\"hi\")}}))\n")
	for _, compute := range []string{
		`{"kind": "serverless", "environment_version": "4"}`,
		`{"kind": "new_cluster", "node_type_id": "i3.xlarge", "autoscale": {"min_workers": 1, "max_workers": 2}}`,
		`{"kind": "existing_cluster", "existing_cluster_id": "0101-abc"}`,
	} {
		r.config = json.RawMessage(strings.Replace(testConfig, `{"kind": "serverless", "environment_version": "3"}`, compute, 1))
		task := r.task("where", "where.py", nil)
		task.Outputs = []string{"file", "shout"}
		res, ev := r.run(t, context.Background(), task)
		if res.Status != executor.Succeeded {
			t.Fatalf("%s: %+v", compute, res.Error)
		}
		file := filepath.ToSlash(res.Outputs["file"])
		if !strings.Contains(file, "/libraries/") || !strings.HasSuffix(file, "/helper/__init__.py") || res.Outputs["shout"] != "HI" {
			t.Errorf("%s: helper imported from %s, not from the installed wheel", compute, file)
		}
		uploaded := 0
		for _, e := range ev.list() {
			if strings.Contains(e.Text, "uploaded helper-1.2.0-py3-none-any.whl") {
				uploaded++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[strings.Contains(compute, "serverless")]; uploaded != want {
			t.Errorf("%s: %d uploads of the wheel, want %d (content-addressed: once)", compute, uploaded, want)
		}
	}
	vol, err := r.e.VolumePath("/Volumes/dev/s/v/.pipectl/wheels")
	if err != nil {
		t.Fatal(err)
	}
	wheels, _ := filepath.Glob(filepath.Join(vol, "*", "helper-1.2.0-py3-none-any.whl"))
	if len(wheels) != 1 {
		t.Errorf("wheels in the Volume: %v, want one", wheels)
	}
	emuDir := vol
	for range strings.Split("volumes/dev/s/v/.pipectl/wheels", "/") {
		emuDir = filepath.Dir(emuDir)
	}
	ws := filepath.Join(emuDir, "workspace")
	copies, _ := filepath.Glob(filepath.Join(ws, "Shared", "pipectl", "test", ".pipectl", "code", "*", "notebooks", "helper"))
	code, _ := filepath.Glob(filepath.Join(ws, "Shared", "pipectl", "test", ".pipectl", "code", "*", "notebooks", "where*"))
	if len(copies) != 0 || len(code) == 0 {
		t.Errorf("imported code: notebook %v, package copies %v; want the notebook and no copy of the package", code, copies)
	}
}

// A pinned requirement the emulator's Python does not have fails the task
// as a library installation does on Databricks, instead of running the
// notebook against other versions.
func TestMissingPinFailsLikeALibraryInstall(t *testing.T) {
	r := newRig(t, emulator.Options{})
	if err := os.WriteFile(filepath.Join(r.project, "notebooks", "requirements.txt"), []byte("pipectl-no-such-package==1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _ := r.run(t, context.Background(), r.task("echo", "echo.py", map[string]string{"message": "hi"}))
	if res.Status != executor.Failed || res.Error == nil || !strings.Contains(res.Error.Message, "Library installation failed for pypi: pipectl-no-such-package==1.0 (the emulator's Python has none)") ||
		!strings.Contains(res.Error.Message, "LIBRARY_INSTALLATION_ERROR") {
		t.Fatalf("got %+v", res.Error)
	}
}
