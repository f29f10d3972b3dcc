//go:build unix

package local

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/proc"
)

// The tests of local_test.go run stages through the stage worker (the
// default); TestPlainProcesses runs them again as plain processes. The
// tests here are about the worker itself.

// workerOf returns e's stage worker (there is one per project here).
func workerOf(t testing.TB, e *Executor) *worker {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workers {
		return w
	}
	t.Fatal("the executor has no stage worker")
	return nil
}

// waitPreloaded waits until w has imported everything it preloads.
func waitPreloaded(t testing.TB, w *worker) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(w.logs.text(), "pipectl-worker: preloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("the stage worker did not finish preloading:\n%s", w.logs.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startupSeen is what testdata/notebooks/startup.py reports.
type startupSeen struct {
	ModuleMark  *string  `json:"module_mark"`
	EnvMark     *string  `json:"env_mark"`
	Cwd         string   `json:"cwd"`
	Random      float64  `json:"random"`
	Pid         int      `json:"pid"`
	TrackingURI string   `json:"tracking_uri"`
	Argv0       string   `json:"argv0"`
	Versions    []string `json:"versions"`
}

func runStartup(t *testing.T, f *fixture, e *Executor, stage string) (executor.Result, startupSeen, *events) {
	t.Helper()
	task := f.task("startup.py", nil)
	task.Stage = stage
	task.Type = "data" // does not wait for the MLflow server
	var rec events
	res := run(t, testCtx(t), e, task, &rec)
	if res.Status != executor.Succeeded {
		t.Fatalf("%s: %s %+v\n%s", stage, res.Status, res.Error, rec.text())
	}
	var seen startupSeen
	if err := json.Unmarshal([]byte(res.Outputs["seen"]), &seen); err != nil {
		t.Fatalf("%s: output seen %q: %v", stage, res.Outputs["seen"], err)
	}
	return res, seen, &rec
}

const (
	workerParent = "pipectl: stage worker"
	guardParent  = "pipectl guard"
)

func TestWorkerStartsIsolatedStages(t *testing.T) {
	f := getFixture(t)
	runStartup(t, f, f.e, "warm")
	waitPreloaded(t, workerOf(t, f.e))
	var seen []startupSeen
	for _, stage := range []string{"one", "two"} {
		res, s, _ := runStartup(t, f, f.e, stage)
		if !strings.Contains(res.Outputs["parent"], workerParent) {
			t.Errorf("%s: the stage's parent is %q, want the stage worker", stage, res.Outputs["parent"])
		}
		if got := res.Outputs["preloaded"]; got != "pandas,sklearn,mlflow" {
			t.Errorf("%s: modules loaded before the first cell: %q, want pandas, sklearn and mlflow", stage, got)
		}
		seen = append(seen, s)
	}
	for i, s := range seen {
		if s.ModuleMark != nil || s.EnvMark != nil {
			t.Errorf("stage %d saw what an earlier stage set: module %v, environment %v", i, *s.ModuleMark, s.EnvMark)
		}
		if s.Cwd != f.project {
			t.Errorf("stage %d ran in %s, want the project root %s", i, s.Cwd, f.project)
		}
		if !strings.HasPrefix(s.TrackingURI, "http://127.0.0.1:") {
			t.Errorf("stage %d: MLFLOW_TRACKING_URI %q, want the run's server", i, s.TrackingURI)
		}
		if want := filepath.Join("pipectl_runner", "__main__.py"); !strings.HasSuffix(s.Argv0, want) {
			t.Errorf("stage %d: sys.argv[0] %q, want .../%s as with python -m", i, s.Argv0, want)
		}
	}
	if seen[0].Pid == seen[1].Pid {
		t.Error("two stages ran in one process")
	}
	if seen[0].Random == seen[1].Random {
		t.Errorf("two stages drew the same first random number %v: numpy's global generator was not reseeded", seen[0].Random)
	}
}

func TestWorkerFallsBackToPlainProcess(t *testing.T) {
	f := getFixture(t)
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	defer e.Close()
	res, _, _ := runStartup(t, f, e, "first")
	if !strings.Contains(res.Outputs["parent"], workerParent) {
		t.Fatalf("the first stage's parent is %q, want the stage worker", res.Outputs["parent"])
	}
	// The socket is gone (a /tmp cleaner, say): the stage still runs.
	w := workerOf(t, e)
	if err := os.Remove(w.sock); err != nil {
		t.Fatal(err)
	}
	res, _, rec := runStartup(t, f, e, "second")
	if !strings.Contains(res.Outputs["parent"], guardParent) {
		t.Errorf("the stage's parent is %q, want the guard of a plain process", res.Outputs["parent"])
	}
	if stderr := strings.Join(rec.logs("stderr"), "\n"); !strings.Contains(stderr, "pipectl: the stage worker could not start the stage, starting it as a plain process") {
		t.Errorf("the fallback was not noted:\n%s", stderr)
	}
	// The worker is not tried again, nor noted again.
	_, _, rec = runStartup(t, f, e, "third")
	if stderr := strings.Join(rec.logs("stderr"), "\n"); strings.Contains(stderr, "stage worker") {
		t.Errorf("the third stage noted the worker again:\n%s", stderr)
	}
	select {
	case <-w.stopped:
	case <-time.After(30 * time.Second):
		t.Error("the broken worker was not stopped")
	}
}

func TestWorkerRestartsAfterDying(t *testing.T) {
	f := getFixture(t)
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	defer e.Close()
	runStartup(t, f, e, "first")
	w := workerOf(t, e)
	syscall.Kill(-w.p.Pid(), syscall.SIGKILL)
	<-w.stopped
	res, _, _ := runStartup(t, f, e, "second")
	if !strings.Contains(res.Outputs["parent"], workerParent) {
		t.Errorf("the stage's parent is %q, want a new stage worker", res.Outputs["parent"])
	}
	if workerOf(t, e) == w {
		t.Error("the dead worker is still the executor's")
	}
}

func TestWorkerDeathLeavesRunningStageAlone(t *testing.T) {
	f := getFixture(t)
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	defer e.Close()
	until := filepath.Join(t.TempDir(), "go")
	rec := events{on: func(ev executor.Event) {
		if strings.HasPrefix(ev.Text, "ready ") {
			w := workerOf(t, e)
			syscall.Kill(-w.p.Pid(), syscall.SIGKILL)
			<-w.stopped
			os.WriteFile(until, nil, 0o644)
		}
	}}
	res := run(t, testCtx(t), e, f.task("wait.py", map[string]string{"until_file": until}), &rec)
	if res.Status != executor.Succeeded || res.Outputs["waited"] != "true" {
		t.Fatalf("got %s %+v, want the stage to finish after its worker died\n%s", res.Status, res.Error, rec.text())
	}
}

// TestPlainProcesses runs the behaviour tests of local_test.go with every
// stage started as a plain process, the worker's fallback.
func TestPlainProcesses(t *testing.T) {
	f := getFixture(t)
	plain := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second, NoWorker: true})
	defer plain.Close()
	withWorker := f.e
	f.e = plain
	defer func() { f.e = withWorker }()
	res, _, _ := runStartup(t, f, plain, "plain")
	if !strings.Contains(res.Outputs["parent"], guardParent) {
		t.Fatalf("with NoWorker the stage's parent is %q, want the guard", res.Outputs["parent"])
	}
	for _, test := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"RunParamsOutputsMetricsAndLogs", TestRunParamsOutputsMetricsAndLogs},
		{"RunStreamsOutputLive", TestRunStreamsOutputLive},
		{"RunNotebookFailure", TestRunNotebookFailure},
		{"RunWithoutExitValue", TestRunWithoutExitValue},
		{"CancelKillsProcessGroupAndMarksRunsKilled", TestCancelKillsProcessGroupAndMarksRunsKilled},
		{"TimeoutStopsNotebook", TestTimeoutStopsNotebook},
	} {
		t.Run(test.name, test.fn)
	}
}

// helperStageMain plays a pipectl process that runs wait.py (spawn=true)
// through the stage worker and prints the stage's output and the worker's
// pid, until the test kills it (TestStagesDieWithExecutorProcess).
func helperStageMain() {
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	task := executor.Task{RunID: "helper-" + newID(), Pipeline: "tests", Target: "local", Stage: "wait", Type: "data",
		Notebook: filepath.Join(PythonDir, "test", "wait.py"), ProjectRoot: os.Getenv("LOCAL_TEST_PROJECT"),
		StateDir: os.Getenv("LOCAL_TEST_STATE"), Attempt: 1, Params: map[string]string{"spawn": "true"}}
	res, err := e.Run(context.Background(), task, func(ev executor.Event) {
		if ev.Kind == executor.EventLog {
			fmt.Println(ev.Text)
			if strings.HasPrefix(ev.Text, "ready ") {
				e.mu.Lock()
				for _, w := range e.workers {
					fmt.Printf("worker %d\n", w.p.Pid())
				}
				e.mu.Unlock()
			}
		}
	})
	fmt.Println("ended", res.Status, err)
	os.Exit(1)
}

// TestStagesDieWithExecutorProcess: when the process running the executor
// dies (SIGKILL: no clean-up at all), the stage the worker started, its
// child and the worker go too.
func TestStagesDieWithExecutorProcess(t *testing.T) {
	f := getFixture(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe, "-test.run=^$")
	helper.Env = append(os.Environ(), "LOCAL_TEST_HELPER=stage", "LOCAL_TEST_PROJECT="+f.project, "LOCAL_TEST_STATE="+f.state)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	var lines []string
	var workerPid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if rest, ok := strings.CutPrefix(sc.Text(), "worker "); ok {
			workerPid, _ = strconv.Atoi(rest)
			break
		}
	}
	pids := pidsFrom(lines)
	if len(pids) != 2 || workerPid == 0 {
		t.Fatalf("the helper did not report the stage's pids and its worker:\n%s", strings.Join(lines, "\n"))
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[1]))
	if fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(fields) > 2 {
		ppid, _ := strconv.Atoi(fields[1])
		if ppidCmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)); !strings.Contains(string(ppidCmd), workerParent) {
			t.Fatalf("the stage was not started by the worker (its parent: %q)", ppidCmd)
		}
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	waitGone(t, append(pids, workerPid))
}

// newTestWorker starts a worker for the fixture's project, as the executor
// would, and returns it with the stage command template for startup.py.
func newTestWorker(t *testing.T, f *fixture) (*worker, func(out string, rec *events) proc.Cmd) {
	t.Helper()
	task := f.task("startup.py", nil)
	l, err := newLayout(task)
	if err != nil {
		t.Fatal(err)
	}
	env, err := f.e.venv(testCtx(t), l, func(executor.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	w := startWorker(env.Python, l.root, withoutPerStage(stageEnv(os.Environ(), l, "")))
	t.Cleanup(w.Close)
	if err := w.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return w, func(out string, rec *events) proc.Cmd {
		return proc.Cmd{Path: env.Python, Args: []string{"-m", "pipectl_runner", l.notebook, "--param", "pipectl_stage=direct", "--output", out}, Dir: l.root,
			Env: stageEnv(os.Environ(), l, "http://127.0.0.1:9"), Stdout: func(s string) { rec.sink(executor.Event{Kind: executor.EventLog, Stream: "stdout", Text: s}) },
			Stderr: func(s string) { rec.sink(executor.Event{Kind: executor.EventLog, Stream: "stderr", Text: s}) }}
	}
}

func TestWorkerStartsMLflowStagesAfterPreload(t *testing.T) {
	f := getFixture(t)
	w, stage := newTestWorker(t, f)
	// At once, while the worker is still importing: a stage that uses
	// MLflow waits until the worker has imported everything.
	out := filepath.Join(t.TempDir(), "out.json")
	var rec events
	cmd := stage(out, &rec)
	cmd.Launcher = workerLauncher{ctx: testCtx(t), w: w, afterPreload: true}
	st, err := proc.Run(testCtx(t), cmd)
	if err != nil || !st.Success() {
		t.Fatalf("%+v %v\n%s%s", st, err, rec.text(), w.logs.text())
	}
	b, _ := os.ReadFile(out)
	var exit struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(b, &exit); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if got := exit.Outputs["preloaded"]; got != "pandas,sklearn,mlflow" {
		t.Errorf("modules loaded before the first cell: %q, want all of pandas, sklearn and mlflow", got)
	}
}

func TestWorkerLaunchCancelled(t *testing.T) {
	f := getFixture(t)
	w, stage := newTestWorker(t, f)
	ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
	defer cancel()
	var rec events
	cmd := stage(filepath.Join(t.TempDir(), "out.json"), &rec)
	cmd.Launcher = workerLauncher{ctx: ctx, w: w, afterPreload: true}
	started := time.Now()
	if _, err := proc.Run(ctx, cmd); err == nil {
		t.Fatal("a launch cancelled while the worker was preloading did not fail")
	}
	if d := time.Since(started); d > 10*time.Second {
		t.Errorf("the cancelled launch took %s to give up", d)
	}
	// Once the worker gets to the request, it runs nothing.
	waitPreloaded(t, w)
	time.Sleep(time.Second)
	if out := rec.text(); out != "" {
		t.Errorf("the cancelled stage ran:\n%s", out)
	}
}
