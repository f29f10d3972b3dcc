package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// emulatorToken is the token of the scripts' emulators; the scripts check
// that it never shows in pipectl's output.
const emulatorToken = "dapi5cr1pt0123456789abcdef0123456789"

// TestDatabricksScripts runs the golden scripts of testdata/script/databricks
// against a Databricks API emulator started for each script:
// DATABRICKS_HOST and DATABRICKS_TOKEN point at it ($TOKEN holds the token,
// for leak checks). Update the goldens with PIPECTL_UPDATE=1.
//
// Extra commands: "jobs N" asserts the workspace has N jobs; "calls
// METHOD PATH N" that the emulator received N such requests since the start
// or "resetcalls"; "fail TASK" makes the next run of task TASK fail;
// "unhost FILE" replaces the emulator's URL in FILE with http://emulator.
func TestDatabricksScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script", "databricks"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       os.Getenv("PIPECTL_UPDATE") == "1",
		Setup: func(env *testscript.Env) error {
			// Notebooks run with python3 and the repository's
			// pipectl_runner (standard library only), when there is one.
			py, _ := exec.LookPath("python3")
			repo, _ := filepath.Abs(filepath.Join("..", ".."))
			e, err := emulator.Start(emulator.Options{Dir: filepath.Join(env.WorkDir, ".emulator"), Token: emulatorToken,
				Catalogs: []string{"dev", "staging", "prod"},
				Python:   py, PythonPath: []string{filepath.Join(repo, "notebooks")},
				MLflowTrackingURI: "file://" + filepath.Join(env.WorkDir, ".mlruns")})
			if err != nil {
				return err
			}
			env.Defer(func() { _ = e.Close() })
			env.Values["emulator"] = e
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("DATABRICKS_HOST", e.URL)
			env.Setenv("DATABRICKS_TOKEN", emulatorToken)
			env.Setenv("TOKEN", emulatorToken)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jobs":          countJobs,
			"emulator-user": emulatorUser,
			"writes":        countWrites,
			"edit-job":      editJob,
			"grant-job":     grantJob,
			"calls":         countCalls,
			"fail":          failTask,
			"resetcalls": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Value("emulator").(*emulator.Emulator).ResetCalls()
			},
			"unhost": unhost,
		},
	})
}

// countJobs is "jobs N": the emulator holds exactly N jobs.
func countJobs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: jobs N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	e := ts.Value("emulator").(*emulator.Emulator)
	env := func(k string) string {
		return map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": emulatorToken}[k]
	}
	c, err := databricks.NewClient(&databricks.Config{}, env, nil)
	ts.Check(err)
	all, err := c.W.Jobs.ListAll(context.Background(), jobs.ListJobsRequest{})
	ts.Check(err)
	var names []string
	for _, j := range all {
		names = append(names, j.Settings.Name)
	}
	if (len(all) == want) == neg {
		ts.Fatalf("%d jobs (%s), want %s%d", len(all), strings.Join(names, ", "), map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// emulatorUser is "emulator-user NAME": the token now belongs to NAME
// (SCIM /Me), as another developer's would.
func emulatorUser(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: emulator-user NAME")
	}
	ts.Value("emulator").(*emulator.Emulator).SetUser(args[0])
}

// countWrites is "writes N": the emulator received exactly N
// state-changing calls since the last "writes" (or the start).
func countWrites(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: writes N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	e := ts.Value("emulator").(*emulator.Emulator)
	if got := e.Writes(); got != want {
		ts.Fatalf("%d writes, want %d: %v", got, want, e.Calls())
	}
	e.ResetCalls()
}

// editJob is "edit-job NAME JSON": a person changes the job named NAME in
// the workspace (jobs/update with JSON as new_settings), as the UI does.
func editJob(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: edit-job NAME JSON")
	}
	c, job := jobNamed(ts, args[0])
	var s jobs.JobSettings
	ts.Check(json.Unmarshal([]byte(args[1]), &s))
	ts.Check(c.W.Jobs.Update(context.Background(), jobs.UpdateJob{JobId: job, NewSettings: &s}))
}

// jobNamed is a client of the script's emulator and the id of its one job
// named name, as a person in the workspace would find it.
func jobNamed(ts *testscript.TestScript, name string) (*databricks.Client, int64) {
	e := ts.Value("emulator").(*emulator.Emulator)
	env := func(k string) string {
		return map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": emulatorToken}[k]
	}
	c, err := databricks.NewClient(&databricks.Config{}, env, nil)
	ts.Check(err)
	all, err := c.W.Jobs.ListAll(context.Background(), jobs.ListJobsRequest{Name: name})
	ts.Check(err)
	if len(all) != 1 {
		ts.Fatalf("%d jobs named %q", len(all), name)
	}
	return c, all[0].JobId
}

// grantJob is "grant-job NAME GROUP LEVEL": a person grants a group a
// permission on the job named NAME in the workspace (PATCH).
func grantJob(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 || neg {
		ts.Fatalf("usage: grant-job NAME GROUP LEVEL")
	}
	c, job := jobNamed(ts, args[0])
	_, err := c.W.Jobs.UpdatePermissions(context.Background(), jobs.JobPermissionsRequest{JobId: strconv.FormatInt(job, 10),
		AccessControlList: []jobs.JobAccessControlRequest{{GroupName: args[1], PermissionLevel: jobs.JobPermissionLevel(args[2])}}})
	ts.Check(err)
}

// countCalls is "calls METHOD PATH N": the emulator received N such
// requests since the start or the last "resetcalls".
func countCalls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: calls METHOD PATH N")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	e := ts.Value("emulator").(*emulator.Emulator)
	got := e.Calls()[args[0]+" "+args[1]]
	if (got == want) == neg {
		ts.Fatalf("%d %s %s calls, want %s%d", got, args[0], args[1], map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// unhost is "unhost FILE": the emulator's URL (its port changes) in FILE
// becomes http://emulator.
func unhost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: unhost FILE")
	}
	e := ts.Value("emulator").(*emulator.Emulator)
	name := ts.MkAbs(args[0])
	b, err := os.ReadFile(name)
	ts.Check(err)
	ts.Check(os.WriteFile(name, bytes.ReplaceAll(b, []byte(e.URL), []byte("http://emulator")), 0o644))
}

// failTask is "fail TASK": the next run of task TASK fails.
func failTask(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: fail TASK")
	}
	ts.Value("emulator").(*emulator.Emulator).InjectTask(emulator.TaskFault{TaskKey: args[0], Kind: emulator.FailTask,
		Error: "ValueError: injected by the test", Times: 1})
}

// TestDevEmulator starts pipectl dev databricks-emulator in process, checks
// what it prints, talks to it with the printed token and stops it as
// Ctrl-C would.
func TestDevEmulator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	app := &App{Ctx: ctx, Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	done := make(chan int)
	go func() {
		done <- runApp(app, []string{"dev", "databricks-emulator", "--emulator-dir", t.TempDir(), "--token", "dapi-demo-token"})
	}()
	want := regexp.MustCompile(`^export DATABRICKS_HOST=(http://127\.0\.0\.1:[0-9]+)\nexport DATABRICKS_TOKEN=dapi-demo-token\n$`)
	var host string
	for deadline := time.Now().Add(30 * time.Second); host == ""; {
		if m := want.FindStringSubmatch(stdout.String()); m != nil {
			host = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	env := map[string]string{"DATABRICKS_HOST": host, "DATABRICKS_TOKEN": "dapi-demo-token"}
	c, err := databricks.NewClient(&databricks.Config{}, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.W.Jobs.ListAll(ctx, jobs.ListJobsRequest{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the emulator did not stop")
	}
	if !strings.Contains(stderr.String(), "serving "+host) || !strings.Contains(stderr.String(), "stopping the emulator") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDatabricksThroughPlugin runs a stage on the emulator through the real
// path: pipectl serves the databricks built-in over go-plugin (a child
// process that inherits DATABRICKS_HOST and DATABRICKS_TOKEN), and a
// cancelled context cancels the remote run across the gRPC boundary.
func TestDatabricksThroughPlugin(t *testing.T) {
	notebooks := os.Getenv("PIPECTL_TEST_NOTEBOOKS")
	if notebooks == "" {
		notebooks = filepath.Join("..", "..", "notebooks")
	}
	notebooks, _ = filepath.Abs(notebooks)
	if _, err := os.Stat(filepath.Join(notebooks, "pipectl_runner", "__main__.py")); err != nil {
		t.Skipf("no notebook runner in %s; set PIPECTL_TEST_NOTEBOOKS", notebooks)
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH")
	}
	e, err := emulator.Start(emulator.Options{Dir: t.TempDir(), Token: emulatorToken, Python: python,
		PythonPath: []string{notebooks}, MLflowTrackingURI: "sqlite:///" + filepath.Join(t.TempDir(), "mlflow.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Setenv("DATABRICKS_HOST", e.URL)
	t.Setenv("DATABRICKS_TOKEN", emulatorToken)

	project := t.TempDir()
	nb := "# Databricks notebook source\nimport json, time\ndbutils.widgets.text(\"seconds\", \"0\")\n" +
		"time.sleep(float(dbutils.widgets.get(\"seconds\")))\n" +
		"dbutils.notebook.exit(json.dumps({\"outputs\": {\"slept\": dbutils.widgets.get(\"seconds\")}}))\n"
	if err := os.MkdirAll(filepath.Join(project, "notebooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "notebooks", "nap.py"), []byte(nb), 0o644); err != nil {
		t.Fatal(err)
	}
	app := testApp(t, project)
	x, err := app.registry().Open(context.Background(), databricks.Name)
	if err != nil {
		t.Fatal(err)
	}
	config := []byte(`{"workspace_root": "/Workspace/Shared/pipectl/t", "catalog": "c", "schema": "s", "volume": "v", "experiment_root": "/Shared/t"}`)
	task := func(stage, seconds string) executor.Task {
		return executor.Task{RunID: "plugin-test", Pipeline: "p", Target: "dev", Stage: stage, Type: "custom", Notebook: "notebooks/nap.py",
			ProjectRoot: project, Params: map[string]string{"seconds": seconds}, Attempt: 1, Timeout: time.Minute, Config: config}
	}
	var mu sync.Mutex
	var links []string
	sink := func(ev executor.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Link != nil {
			links = append(links, ev.Link.URL)
		}
	}
	res, err := x.Run(context.Background(), task("quick", "0"), sink)
	if err != nil || res.Status != executor.Succeeded || res.Outputs["slept"] != "0" {
		t.Fatalf("%v %+v", err, res)
	}
	if len(links) != 1 || !strings.HasPrefix(links[0], e.URL) {
		t.Fatalf("link events %v", links)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(e.ActiveRuns()) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		cancel()
	}()
	res, err = x.Run(ctx, task("long", "120"), sink)
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("cancelled stage: %v %+v", err, res)
	}
	if active := e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("runs %v still active after Run returned", active)
	}
}
