package plugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
)

// The test binary doubles as a plugin and as a host: process tests run it
// again with PIPECTL_PLUGIN_TEST_MODE set, so the real go-plugin path
// (exec, handshake, gRPC over a socket) is what they exercise.
const testModeEnv = "PIPECTL_PLUGIN_TEST_MODE"

func TestMain(m *testing.M) {
	switch os.Getenv(testModeEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		protocol, _ := strconv.Atoi(os.Getenv("PIPECTL_TEST_SERVE_PROTOCOL"))
		if err := ServeWithOptions(&testExecutor{}, ServeOptions{protocol: protocol, ShutdownGrace: 5 * time.Second}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "leaky":
		if err := leaveChildren(os.Getenv("PIPECTL_TEST_PIDS")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := ServeWithOptions(&testExecutor{}, ServeOptions{ShutdownGrace: 5 * time.Second}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "noise":
		fmt.Println("hello from a chatty init")
		Serve(&testExecutor{})
		os.Exit(0)
	case "crash":
		fmt.Fprintln(os.Stderr, "cannot load config: boom")
		os.Exit(3)
	case "host":
		os.Exit(hostMain())
	default:
		fmt.Fprintln(os.Stderr, "unknown test mode")
		os.Exit(2)
	}
}

// hostMain plays pipectl for TestPluginExitsWhenHostIsKilled: it starts a
// plugin, runs a long stage, prints the plugin's pid and waits to be
// killed.
func hostMain() int {
	exe, _ := os.Executable()
	c, err := Start(context.Background(), Config{Name: "test", Path: exe, Env: []string{testModeEnv + "=serve"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	task := executor.Task{Stage: "long", Params: map[string]string{"pid": "true", "sleep": "1h", "marker": os.Getenv("PIPECTL_TEST_MARKER")}}
	_, err = c.Run(context.Background(), task, func(e executor.Event) {
		fmt.Println(e.Text)
	})
	fmt.Fprintln(os.Stderr, "run returned:", err)
	return 1
}

// leaveChildren plays a misbehaving plugin: it starts two children that
// hold its stdout and stderr open and outlive it, one in its process group
// and one that leaves it (a new session), and writes their pids to file.
func leaveChildren(file string) error {
	var pids []string
	for _, setsid := range []bool{false, true} {
		cmd := exec.Command("sleep", "300")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
		if err := cmd.Start(); err != nil {
			return err
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	return os.WriteFile(file, []byte(strings.Join(pids, " ")), 0o600)
}

// testExecutor is steered by stage parameters, so that each test can ask
// the plugin process for the behaviour it checks.
type testExecutor struct{}

func (testExecutor) Describe(context.Context) (executor.Info, error) {
	name := os.Getenv("PIPECTL_TEST_NAME")
	if name == "" {
		name = "test"
	}
	protocol := executor.ProtocolVersion
	if p, err := strconv.Atoi(os.Getenv("PIPECTL_TEST_DESCRIBE_PROTOCOL")); err == nil {
		protocol = p
	}
	return executor.Info{Name: name, Version: "0.0.1", Protocol: protocol, Description: "test executor"}, nil
}

func (testExecutor) Validate(_ context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	if req.Target == "broken" {
		return nil, errors.New("cannot reach the workspace")
	}
	return diag.Diagnostics{
		{Severity: diag.Warning, Summary: "config.retries is ignored", Path: "targets.dev.config.retries"},
		diag.Errorf(diag.Pos{File: "specs/p.cue", Line: 3, Col: 5}, "targets.dev.config.command", "command is empty").WithFix("set config.command"),
	}, nil
}

func (testExecutor) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	p := task.Params
	if p["pid"] == "true" {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stdout", Text: "pid=" + strconv.Itoa(os.Getpid())})
	}
	n, _ := strconv.Atoi(p["events"])
	for i := range n {
		sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stdout", Text: "line " + strconv.Itoa(i)})
	}
	if n > 0 {
		sink(executor.Event{Kind: executor.EventProgress, Text: "half way", Fraction: 0.5})
		sink(executor.Event{Kind: executor.EventLink, Link: &executor.Link{Label: "run", URL: "https://example.invalid/run/1"}})
	}
	switch p["die"] {
	case "kill":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "exit":
		os.Exit(3)
	}
	if p["panic"] == "true" {
		panic("boom")
	}
	if p["error"] == "true" {
		return executor.Result{}, errors.New("the executor is misconfigured")
	}
	if d, err := time.ParseDuration(p["sleep"]); err == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			if m := p["marker"]; m != "" {
				_ = os.WriteFile(m, []byte(context.Cause(ctx).Error()), 0o600)
			}
			return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "stopped: " + context.Cause(ctx).Error()}}, nil
		}
	}
	if p["fail"] == "true" {
		return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "exit status 1", Detail: "Traceback...", Retryable: true}}, nil
	}
	out := map[string]string{"stage": task.Stage, "attempt": strconv.Itoa(task.Attempt), "config": string(task.Config)}
	if name := p["getenv"]; name != "" {
		v, ok := os.LookupEnv(name)
		out["env"], out["env_set"] = v, strconv.FormatBool(ok)
	}
	return executor.Result{Status: executor.Succeeded, Outputs: out, Metrics: map[string]float64{"events": float64(n)},
		Links: []executor.Link{{Label: "log", URL: "file:///tmp/log"}}}, nil
}

func (testExecutor) CheckOutputs(_ context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	if req.Outputs["x"] == "present" {
		return executor.CheckResult{Exists: true}, nil
	}
	return executor.CheckResult{Exists: false, Reason: "x is gone"}, nil
}

func (testExecutor) Close() error {
	if m := os.Getenv("PIPECTL_TEST_CLOSE_MARKER"); m != "" {
		return os.WriteFile(m, []byte("closed"), 0o600)
	}
	return nil
}

// testLogger collects a test's host log and prints it if the test fails.
func testLogger(t testing.TB) hclog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("host log:\n%s", buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &buf}, Level: hclog.Debug})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
