package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// These tests run real notebooks through the real runner (copied from the
// repository's notebooks/ into a temporary project) in a real venv built
// from notebooks/requirements.txt, against a real MLflow server.
//
// The venv and the MLflow store live in a state directory shared by every
// test and kept between test runs: $PIPECTL_TEST_STATE, or
// <user cache dir>/pipectl/test-state. The first run builds the venv (about
// a minute with pip's cache warm, more without it); later runs reuse it.

func TestMain(m *testing.M) {
	if os.Getenv("LOCAL_TEST_HELPER") == "stage" {
		helperStageMain() // worker_test.go
		return
	}
	code := m.Run()
	for _, c := range testCleanups {
		c()
	}
	if fix != nil {
		fix.e.Close()
		os.RemoveAll(fix.project)
	}
	os.Exit(code)
}

// fixture is the state shared by the tests of this package.
type fixture struct {
	e       *Executor
	project string
	state   string
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixSkip string
	fixErr  error
)

// repoRoot is the module root (where go.mod is).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// testStateDir is the shared state directory (venv, MLflow store).
func testStateDir(t testing.TB) string {
	if d := os.Getenv("PIPECTL_TEST_STATE"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the shared test venv (set PIPECTL_TEST_STATE): %v", err)
	}
	return filepath.Join(cache, "pipectl", "test-state")
}

func getFixture(t testing.TB) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a venv and runs MLflow (skipped with -short)")
	}
	fixOnce.Do(func() {
		src := filepath.Join(repoRoot(t), PythonDir)
		if _, err := os.Stat(filepath.Join(src, "pipectl_runner", "__main__.py")); err != nil {
			fixSkip = "the notebook runner is not in this checkout (" + src + "/pipectl_runner)"
			return
		}
		project, err := os.MkdirTemp("", "pipectl-local-test-")
		if err != nil {
			fixErr = err
			return
		}
		nb := filepath.Join(project, PythonDir)
		fixErr = copyFiles(filepath.Join(src, "pipectl_runner"), filepath.Join(nb, "pipectl_runner"), ".py")
		if fixErr == nil {
			fixErr = copyFile(filepath.Join(src, "requirements.txt"), filepath.Join(nb, "requirements.txt"))
		}
		if fixErr == nil {
			fixErr = copyFiles("testdata/notebooks", filepath.Join(nb, "test"), ".py")
		}
		fix = &fixture{project: project, state: testStateDir(t),
			e: New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})}
	})
	if fixSkip != "" {
		t.Skip(fixSkip)
	}
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

func copyFiles(from, to, ext string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ext) {
			if err := copyFile(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// task is a custom stage running testdata notebook nb.
func (f *fixture) task(nb string, params map[string]string) executor.Task {
	return executor.Task{RunID: "test-" + newID(), Pipeline: "tests", Target: "local", Stage: strings.TrimSuffix(nb, ".py"),
		Type: "custom", Notebook: filepath.Join(PythonDir, "test", nb), ProjectRoot: f.project, StateDir: f.state,
		Params: params, Attempt: 1, GitCommit: "0123abc",
		Config: json.RawMessage(`{"data_root": "data", "output_root": "/tmp/pipectl-test-out"}`)}
}

// events records what a Run reports.
type events struct {
	mu  sync.Mutex
	all []executor.Event
	on  func(executor.Event)
}

func (r *events) sink(ev executor.Event) {
	r.mu.Lock()
	r.all = append(r.all, ev)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (r *events) logs(stream string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.all {
		if ev.Kind == executor.EventLog && ev.Stream == stream {
			out = append(out, ev.Text)
		}
	}
	return out
}

func (r *events) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.all {
		fmt.Fprintf(&b, "%s %s %s\n", ev.Kind, ev.Stream, ev.Text)
	}
	return b.String()
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, ctx context.Context, e *Executor, task executor.Task, rec *events) executor.Result {
	t.Helper()
	res, err := e.Run(ctx, task, rec.sink)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, rec.text())
	}
	return res
}

func TestRunParamsOutputsMetricsAndLogs(t *testing.T) {
	f := getFixture(t)
	task := f.task("echo.py", map[string]string{"greeting": "hi there", "count": "3", "data_root": "/not/this"})
	var rec events
	res := run(t, testCtx(t), f.e, task, &rec)
	if res.Status != executor.Succeeded {
		t.Fatalf("status %s: %+v\n%s", res.Status, res.Error, rec.text())
	}
	wantOut := map[string]string{"greeting": "hi there", "number": "4000", "ratio": "0.25", "flag": "true",
		"nothing": "null", "list": `["a",1]`}
	for k, v := range wantOut {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	var params map[string]string
	if err := json.Unmarshal([]byte(res.Outputs["params"]), &params); err != nil {
		t.Fatalf("output params %q: %v", res.Outputs["params"], err)
	}
	uri := params["mlflow_tracking_uri"]
	if !strings.HasPrefix(uri, "http://127.0.0.1:") || params["mlflow_registry_uri"] != uri {
		t.Errorf("tracking URI %q, registry URI %q: want the local server's for both", uri, params["mlflow_registry_uri"])
	}
	wantParams := map[string]string{
		"pipectl_run_id": task.RunID, "pipectl_pipeline": "tests", "pipectl_stage": "echo", "pipectl_target": "local",
		"data_root": filepath.Join(f.project, "data"), "output_root": "/tmp/pipectl-test-out", "project_root": f.project,
		"experiment_root": "", "uc_catalog": "", "uc_schema": "", "git_commit": "0123abc",
		"greeting": "hi there", "count": "3",
	}
	for k, v := range wantParams {
		if got, ok := params[k]; !ok || got != v {
			t.Errorf("notebook saw %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if d := fmt.Sprint(res.Metrics); d != "map[count:3 score:0.5]" {
		t.Errorf("metrics %s, want count 3 and score 0.5 (nan and label left out)", d)
	}
	if got := rec.logs("stdout"); !slices.Equal(got, []string{"first cell", "line 0", "line 1", "line 2"}) {
		t.Errorf("stdout lines %q", got)
	}
	stderr := strings.Join(rec.logs("stderr"), "\n")
	for _, want := range []string{"to stderr", "metric label", "metric nan"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestRunStreamsOutputLive(t *testing.T) {
	f := getFixture(t)
	// The notebook waits for a file the test creates only when it sees the
	// notebook's "ready" line: without live streaming this never ends.
	until := filepath.Join(t.TempDir(), "go")
	rec := events{on: func(ev executor.Event) {
		if ev.Kind == executor.EventLog && strings.HasPrefix(ev.Text, "ready ") {
			os.WriteFile(until, nil, 0o644)
		}
	}}
	ctx, cancel := context.WithTimeout(testCtx(t), 3*time.Minute)
	defer cancel()
	res := run(t, ctx, f.e, f.task("wait.py", map[string]string{"until_file": until}), &rec)
	if res.Status != executor.Succeeded || res.Outputs["waited"] != "true" {
		t.Fatalf("status %s, outputs %v, error %+v\n%s", res.Status, res.Outputs, res.Error, rec.text())
	}
	out := rec.logs("stdout")
	if len(out) != 2 || !strings.HasPrefix(out[0], "ready ") || out[1] != "file seen" {
		t.Errorf("stdout %q, want ready then file seen", out)
	}
}

func TestRunNotebookFailure(t *testing.T) {
	f := getFixture(t)
	var rec events
	res := run(t, testCtx(t), f.e, f.task("fail.py", map[string]string{"what": "the answer"}), &rec)
	if res.Status != executor.Failed || res.Error == nil {
		t.Fatalf("status %s, error %+v, want failed", res.Status, res.Error)
	}
	if want := "notebooks/test/fail.py failed in cell 3: ValueError: boom: the answer"; res.Error.Message != want {
		t.Errorf("message %q, want %q", res.Error.Message, want)
	}
	for _, want := range []string{"explode(dbutils.widgets.get(\"what\"))", "raise ValueError", "ValueError: boom: the answer"} {
		if !strings.Contains(res.Error.Detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, res.Error.Detail)
		}
	}
	if res.Error.Retryable {
		t.Error("a notebook exception is retryable")
	}
	if !strings.Contains(strings.Join(rec.logs("stderr"), "\n"), "cell 3 of 4 failed") {
		t.Errorf("the runner's stderr was not streamed:\n%s", rec.text())
	}
}

func TestRunWithoutExitValue(t *testing.T) {
	f := getFixture(t)
	task := f.task("noexit.py", nil)
	var rec events
	if res := run(t, testCtx(t), f.e, task, &rec); res.Status != executor.Succeeded {
		t.Errorf("custom stage without exit value: %s %+v, want succeeded", res.Status, res.Error)
	}
	// A stage that promises outputs (the runner passes its type's) must
	// return them.
	task.Type, task.Outputs = "data", []string{"data_path"}
	res := run(t, testCtx(t), f.e, task, &rec)
	if res.Status != executor.Failed || !strings.Contains(res.Error.Message, "finished without dbutils.notebook.exit") {
		t.Errorf("data stage without exit value: %s %+v, want a failure saying so", res.Status, res.Error)
	}
}

func TestRunMissingNotebook(t *testing.T) {
	f := getFixture(t)
	task := f.task("nope.py", nil)
	var rec events
	res := run(t, testCtx(t), f.e, task, &rec)
	if res.Status != executor.Failed || !strings.Contains(res.Error.Message, "notebook notebooks/test/nope.py: not found") {
		t.Errorf("got %s %+v, want a failure naming the notebook", res.Status, res.Error)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// pidsFrom collects the pids a wait.py notebook prints ("child N", "ready N").
func pidsFrom(lines []string) []int {
	var pids []int
	for _, l := range lines {
		for _, prefix := range []string{"child ", "ready "} {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				if pid, err := strconv.Atoi(rest); err == nil {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

func TestCancelKillsProcessGroupAndMarksRunsKilled(t *testing.T) {
	f := getFixture(t)
	// The notebook and its child both ignore SIGTERM: only the SIGKILL after
	// the grace period stops them, so the notebook cannot end its MLflow run.
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	rec := events{on: func(ev executor.Event) {
		if strings.HasPrefix(ev.Text, "ready ") {
			cancel()
		}
	}}
	task := f.task("wait.py", map[string]string{"spawn": "true", "ignore_term": "true", "mlflow": "true"})
	started := time.Now()
	res := run(t, ctx, f.e, task, &rec)
	if res.Status != executor.Cancelled || res.Error == nil || res.Error.Message != "cancelled" {
		t.Fatalf("status %s, error %+v, want cancelled\n%s", res.Status, res.Error, rec.text())
	}
	pids := pidsFrom(rec.logs("stdout"))
	if len(pids) != 2 {
		t.Fatalf("the notebook did not report its pids:\n%s", rec.text())
	}
	waitGone(t, pids)
	t.Logf("cancelled after %s", time.Since(started).Round(time.Millisecond))

	var runID string
	for _, l := range rec.logs("stdout") {
		if rest, ok := strings.CutPrefix(l, "mlflow run "); ok {
			runID = rest
		}
	}
	if runID == "" {
		t.Fatalf("no MLflow run reported:\n%s", rec.text())
	}
	if got := runStatus(t, f, runID); got != "KILLED" {
		t.Errorf("MLflow run %s is %s, want KILLED\n%s", runID, got, rec.text())
	}
}

// runStatus asks the fixture's MLflow server for a run's status.
func runStatus(t *testing.T, f *fixture, runID string) string {
	t.Helper()
	f.e.mu.Lock()
	srv := f.e.servers[f.state]
	f.e.mu.Unlock()
	var out struct {
		Run struct {
			Info struct {
				Status string `json:"status"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := newMLflowAPI(srv.URL()).call(context.Background(), http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.Run.Info.Status
}

func TestTimeoutStopsNotebook(t *testing.T) {
	f := getFixture(t)
	// The timeout counts from Run: have the MLflow server and the stage
	// worker ready first, as they are after a run's first stage.
	if res := run(t, testCtx(t), f.e, f.task("noexit.py", nil), &events{}); res.Status != executor.Succeeded {
		t.Fatalf("warm-up: %s %+v", res.Status, res.Error)
	}
	task := f.task("wait.py", map[string]string{"spawn": "true"})
	// Long enough to start Python and the runner on a busy machine, short
	// enough to end in the waiting cell.
	task.Timeout = 5 * time.Second
	var rec events
	res := run(t, testCtx(t), f.e, task, &rec)
	if res.Status != executor.Cancelled || res.Error.Message != "timed out after 5s" {
		t.Fatalf("status %s, error %+v, want a timeout\n%s", res.Status, res.Error, rec.text())
	}
	pids := pidsFrom(rec.logs("stdout"))
	if len(pids) != 2 {
		t.Fatalf("the notebook did not start before the timeout:\n%s", rec.text())
	}
	waitGone(t, pids)
	// SIGTERM reached the runner, which says so.
	if !strings.Contains(strings.Join(rec.logs("stderr"), "\n"), "was stopped") {
		t.Errorf("the runner did not report the SIGTERM:\n%s", rec.text())
	}
}

// TestParallelStagesWriteToMLflow runs stages that write to one experiment
// at once, each logging the same dataset: MLflow's SQL store creates the
// dataset with a check-then-insert, which fails for all but one of
// concurrent requests unless the server serialises writes
// (mlflow_server.py).
func TestParallelStagesWriteToMLflow(t *testing.T) {
	f := getFixture(t)
	const n = 6
	ctx := testCtx(t)
	experiment := "pipectl_test_parallel_" + newID()
	results := make([]executor.Result, n)
	recs := make([]events, n)
	tasks := make([]executor.Task, n)
	var wg sync.WaitGroup
	for i := range n {
		tasks[i] = f.task("track.py", map[string]string{"model_name": fmt.Sprintf("pipectl_test_%d", i), "steps": "60",
			"experiment": experiment})
		tasks[i].Stage = fmt.Sprintf("track%d", i)
		tasks[i].Type = "train"
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(t, ctx, f.e, tasks[i], &recs[i])
		}()
	}
	wg.Wait()
	for i, res := range results {
		text := recs[i].text()
		if strings.Contains(strings.ToLower(text), "database is locked") {
			t.Errorf("stage %d hit SQLite contention:\n%s", i, text)
		}
		if res.Status != executor.Succeeded {
			t.Errorf("stage %d: %s %+v\n%s", i, res.Status, res.Error, text)
			continue
		}
		if res.Outputs["model_name"] != fmt.Sprintf("pipectl_test_%d", i) || res.Outputs["run_id"] == "" {
			t.Errorf("stage %d outputs %v", i, res.Outputs)
		}
		if len(res.Links) != 2 || !strings.Contains(res.Links[0].URL, "/runs/"+res.Outputs["run_id"]) {
			t.Errorf("stage %d links %v, want the MLflow run and model version", i, res.Links)
		}
		check, err := f.e.CheckOutputs(ctx, executor.CheckRequest{Task: tasks[i], Outputs: res.Outputs})
		if err != nil || !check.Exists {
			t.Errorf("stage %d: CheckOutputs %+v, %v; want the registered version to exist", i, check, err)
		}
		// The artifact went through the server into the store.
		for _, l := range recs[i].logs("stdout") {
			if strings.HasPrefix(l, "registered ") && !strings.Contains(l, "artifacts at mlflow-artifacts:/") {
				t.Errorf("stage %d logged its artifacts elsewhere than the store: %s", i, l)
			}
		}
	}
}

func TestCheckOutputs(t *testing.T) {
	f := getFixture(t)
	ctx := testCtx(t)
	// A registered model version to look for.
	var rec events
	trained := run(t, ctx, f.e, f.task("track.py", map[string]string{"model_name": "pipectl_test_check", "steps": "1"}), &rec)
	if trained.Status != executor.Succeeded {
		t.Fatalf("track.py: %s %+v\n%s", trained.Status, trained.Error, rec.text())
	}
	version := trained.Outputs["model_version"]

	dir := t.TempDir()
	data := filepath.Join(dir, "financial_news", "v1")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "manifest.json"), []byte("{}"), 0o644)
	noManifest := filepath.Join(dir, "financial_news", "v2")
	os.MkdirAll(noManifest, 0o755)
	preds := filepath.Join(dir, "predictions.parquet")
	os.WriteFile(preds, nil, 0o644)
	table := filepath.Join(dir, "run1", "predictions.delta")
	os.MkdirAll(filepath.Join(table, "_delta_log"), 0o755)
	noLog := filepath.Join(dir, "run2", "predictions.delta")
	os.MkdirAll(noLog, 0o755)

	tests := map[string]struct {
		typ     string
		outputs map[string]string
		state   string
		exists  bool
		reason  string
		// promised are the task's outputs (the runner passes the type's).
		promised []string
	}{
		"data":                {"data", map[string]string{"data_path": data}, "", true, "", nil},
		"data no manifest":    {"data", map[string]string{"data_path": noManifest}, "", false, "no manifest.json", nil},
		"data gone":           {"data", map[string]string{"data_path": filepath.Join(dir, "gone")}, "", false, "is gone", nil},
		"data no output":      {"data", nil, "", false, "no data_path", []string{"data_path"}},
		"model":               {"train", map[string]string{"model_name": "pipectl_test_check", "model_version": version}, "", true, "", nil},
		"evaluate model":      {"evaluate", map[string]string{"model_name": "pipectl_test_check", "model_version": version}, "", true, "", nil},
		"model version gone":  {"train", map[string]string{"model_name": "pipectl_test_check", "model_version": "9999"}, "", false, "not in the registry", nil},
		"model unknown":       {"train", map[string]string{"model_name": "no_such_model", "model_version": "1"}, "", false, "not in the registry", nil},
		"model bad version":   {"train", map[string]string{"model_name": "m", "model_version": "one"}, "", false, "not a number", nil},
		"no store":            {"train", map[string]string{"model_name": "m", "model_version": "1"}, dir, false, "no local MLflow store", nil},
		"predictions":         {"inference", map[string]string{"predictions_path": preds}, "", true, "", nil},
		"predictions gone":    {"inference", map[string]string{"predictions_path": preds + ".old"}, "", false, "are gone", nil},
		"predictions table":   {"inference", map[string]string{"predictions_path": table}, "", true, "", nil},
		"table without log":   {"inference", map[string]string{"predictions_path": noLog}, "", false, "no _delta_log", nil},
		"table gone":          {"inference", map[string]string{"predictions_path": table + ".old.delta"}, "", false, "are gone", nil},
		"inference model":     {"inference", map[string]string{"predictions_path": preds, "model_uri": "models:/m/3", "model_version": "3"}, "", true, "", []string{"predictions_path", "rows", "model_uri", "model_version"}},
		"custom always there": {"custom", nil, "", true, "", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			task := f.task("echo.py", nil)
			task.Type, task.Outputs = tc.typ, tc.promised
			if tc.state != "" {
				task.StateDir = tc.state
			}
			got, err := f.e.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: tc.outputs})
			if err != nil {
				t.Fatal(err)
			}
			if got.Exists != tc.exists || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %+v, want exists %v with reason containing %q", got, tc.exists, tc.reason)
			}
		})
	}

	// A deleted model version no longer counts.
	f.e.mu.Lock()
	srv := f.e.servers[f.state]
	f.e.mu.Unlock()
	err := newMLflowAPI(srv.URL()).call(ctx, http.MethodDelete, "/api/2.0/mlflow/model-versions/delete",
		map[string]string{"name": "pipectl_test_check", "version": version}, nil)
	if err != nil {
		t.Fatal(err)
	}
	task := f.task("echo.py", nil)
	task.Type = "train"
	got, err := f.e.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: trained.Outputs})
	if err != nil || got.Exists {
		t.Errorf("deleted version: %+v, %v; want it missing", got, err)
	}
}

func TestServerDeathIsRetryable(t *testing.T) {
	f := getFixture(t)
	// An executor of its own, so killing its server leaves the others be.
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	defer e.Close()
	until := filepath.Join(t.TempDir(), "go")
	var srvDead bool
	rec := events{}
	rec.on = func(ev executor.Event) {
		if !strings.HasPrefix(ev.Text, "ready ") || srvDead {
			return
		}
		srvDead = true
		e.mu.Lock()
		srv := e.servers[f.state]
		e.mu.Unlock()
		srv.mu.Lock()
		p := srv.p
		srv.mu.Unlock()
		syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.Exited()
		os.WriteFile(until, nil, 0o644)
	}
	task := f.task("wait.py", map[string]string{"mlflow": "true", "until_file": until, "log_after": "true"})
	task.Type = "train"
	res := run(t, testCtx(t), e, task, &rec)
	if res.Status != executor.Failed || !res.Error.Retryable || !strings.Contains(res.Error.Message, "MLflow server stopped") {
		t.Fatalf("got %s %+v, want a retryable failure blaming the server\n%s", res.Status, res.Error, rec.text())
	}
	// The run the notebook could not end was marked on the next server.
	var runID string
	for _, l := range rec.logs("stdout") {
		if rest, ok := strings.CutPrefix(l, "mlflow run "); ok {
			runID = rest
		}
	}
	e.mu.Lock()
	next := e.servers[f.state]
	e.mu.Unlock()
	var got struct {
		Run struct {
			Info struct {
				Status string `json:"status"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := newMLflowAPI(next.URL()).call(testCtx(t), http.MethodGet, "/api/2.0/mlflow/runs/get?run_id="+runID, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Run.Info.Status != "KILLED" {
		t.Errorf("MLflow run %s is %s after the server died, want KILLED\n%s", runID, got.Run.Info.Status, rec.text())
	}
	// The next attempt gets a new server.
	var rec2 events
	res = run(t, testCtx(t), e, f.task("echo.py", nil), &rec2)
	if res.Status != executor.Succeeded {
		t.Fatalf("the attempt after the server died: %s %+v\n%s", res.Status, res.Error, rec2.text())
	}
}

func TestServeUI(t *testing.T) {
	f := getFixture(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- ServeUI(ctx, UIOptions{ProjectRoot: f.project, StateDir: f.state, Python: os.Getenv("PIPECTL_PYTHON"),
			Environ: os.Environ(), Port: port, Ready: func(url string) { ready <- url }})
	}()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("ServeUI ended before it was ready: %v", err)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); url != want {
		t.Errorf("URL %s, want %s", url, want)
	}
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET / = %d:\n%.300s", resp.StatusCode, body)
	}
	// A second UI on the same port fails clearly.
	err = ServeUI(ctx, UIOptions{ProjectRoot: f.project, StateDir: f.state, Python: os.Getenv("PIPECTL_PYTHON"),
		Environ: os.Environ(), Port: port})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d is in use", port)) {
		t.Errorf("second UI on port %d: %v, want a port-in-use error", port, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeUI after Ctrl-C: %v", err)
	}
	if _, err := http.Get(url + "/"); err == nil {
		t.Error("the UI still answers after ServeUI returned")
	}
}

func TestValidate(t *testing.T) {
	root := t.TempDir()
	e := New(Options{})
	ds, err := e.Validate(context.Background(), executor.ValidateRequest{Pipeline: "p", Target: "local", ProjectRoot: root,
		Config: json.RawMessage(`{"data_rot": "x"}`),
		Stages: []executor.StageSpec{{Name: "data", Type: "data", Notebook: "notebooks/create_data.py"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Path+": "+d.Summary)
	}
	want := []string{
		`pipelines.p.targets.local.local: local target configuration: json: unknown field "data_rot" (known fields: data_root, output_root)`,
		"pipelines.p.targets.local: " + filepath.Join(root, "notebooks/pipectl_runner/__main__.py") + " not found: the local executor runs notebooks with the runner in notebooks/pipectl_runner and builds its virtualenv from notebooks/requirements.txt",
		"pipelines.p.stages.data.notebook: notebook notebooks/create_data.py not found under " + root,
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCloseStopsStagesAndServer(t *testing.T) {
	f := getFixture(t)
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	closed := make(chan struct{})
	var serverPid int
	rec := events{on: func(ev executor.Event) {
		if strings.HasPrefix(ev.Text, "ready ") {
			e.mu.Lock()
			srv := e.servers[f.state]
			e.mu.Unlock()
			srv.mu.Lock()
			serverPid = srv.p.Pid()
			srv.mu.Unlock()
			go func() { e.Close(); close(closed) }()
		}
	}}
	task := f.task("wait.py", map[string]string{"spawn": "true", "mlflow": "true"})
	res := run(t, testCtx(t), e, task, &rec)
	if res.Status != executor.Cancelled || !strings.Contains(res.Error.Message, "closed") {
		t.Fatalf("got %s %+v, want cancelled by Close\n%s", res.Status, res.Error, rec.text())
	}
	<-closed
	waitGone(t, append(pidsFrom(rec.logs("stdout")), serverPid))
	if !errors.Is(syscall.Kill(-serverPid, 0), syscall.ESRCH) {
		t.Errorf("the MLflow server's process group %d outlived Close", serverPid)
	}
	if _, err := e.Run(testCtx(t), task, rec.sink); err == nil {
		t.Error("Run after Close did not fail")
	}
}

// TestFreshStoreTwoServersAtOnce starts two servers on a new store at once,
// as two pipectl runs would: the first creates the schema under the store's
// lock, the second waits for it (two migrations at once fail).
func TestFreshStoreTwoServersAtOnce(t *testing.T) {
	f := getFixture(t)
	var rec events
	if res := run(t, testCtx(t), f.e, f.task("noexit.py", nil), &rec); res.Status != executor.Succeeded {
		t.Fatalf("warm-up: %s %+v", res.Status, res.Error)
	}
	f.e.mu.Lock()
	python := f.e.servers[f.state].python
	f.e.mu.Unlock()
	store := NewStore(t.TempDir())
	servers := []*server{
		startServer(store, python, os.Environ(), DefaultServerTimeout, 0),
		startServer(store, python, os.Environ(), DefaultServerTimeout, 0),
	}
	for i, s := range servers {
		defer s.Close()
		if _, err := s.Wait(testCtx(t)); err != nil {
			t.Errorf("server %d: %v", i, err)
		}
	}
	if !store.initialized() {
		t.Error("the store is not marked initialized")
	}
	// Both serve the same store.
	api := newMLflowAPI(servers[0].URL())
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := api.call(testCtx(t), http.MethodPost, "/api/2.0/mlflow/experiments/create", map[string]string{"name": "fresh"}, &out); err != nil {
		t.Fatal(err)
	}
	ids, err := newMLflowAPI(servers[1].URL()).experimentIDs(testCtx(t))
	if err != nil || !slices.Contains(ids, out.ID) {
		t.Errorf("the second server lists experiments %v (%v), want %s among them", ids, err, out.ID)
	}
}
