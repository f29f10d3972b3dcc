package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
)

// testApp is an App for project root, as run would build it.
func testApp(t *testing.T, root string) *App {
	t.Helper()
	var stderr bytes.Buffer
	app := &App{Ctx: context.Background(), Stdout: &bytes.Buffer{}, Stderr: &stderr, Root: root, Getenv: os.Getenv}
	t.Cleanup(func() {
		if app.Registry != nil {
			if err := app.Registry.Close(); err != nil {
				t.Error(err)
			}
		}
		if t.Failed() {
			t.Logf("stderr:\n%s", stderr.String())
		}
	})
	return app
}

// children lists the live child processes of this test process.
func children(t *testing.T) []int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counts child processes through /proc")
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, pid)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestExecutorHandshake runs `pipectl __executor noop` as pipectl does and
// checks that the go-plugin handshake is the very first line on stdout.
func TestExecutorHandshake(t *testing.T) {
	pipectl, err := exec.LookPath("pipectl") // testscript's copy of this binary
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pipectl, executorCommand, "noop")
	cmd.Env = append(os.Environ(), plugin.MagicCookieKey+"="+plugin.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	first, err := r.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("no handshake: %v\nstderr: %s", err, stderr.String())
	}
	if !regexp.MustCompile(`^1\|1\|(unix|tcp)\|.*\|grpc`).MatchString(first) {
		t.Errorf("first line on stdout = %q, want the go-plugin handshake", first)
	}
	// SIGTERM shuts it down cleanly, with nothing more on stdout.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	rest, _ := r.ReadString(0)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\nstderr: %s", err, stderr.String())
	}
	if rest != "" {
		t.Errorf("stdout after the handshake: %q", rest)
	}
}

// TestBuiltinsRunThroughSelfExec opens the noop built-in from the registry
// that pipectl uses: a real `pipectl __executor noop` child process.
func TestBuiltinsRunThroughSelfExec(t *testing.T) {
	before := len(children(t))
	app := testApp(t, t.TempDir())
	reg := app.registry()
	if src := reg.Source("noop"); src != sourceBuiltin {
		t.Fatalf("noop source = %q", src)
	}
	ctx := context.Background()
	e, err := reg.Open(ctx, "noop")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(children(t)) - before; n != 1 {
		t.Errorf("%d child processes after opening noop, want 1 (the plugin)", n)
	}
	info, err := e.Describe(ctx)
	if err != nil || info.Name != "noop" || info.Protocol != executor.ProtocolVersion {
		t.Fatalf("Describe = %+v, %v", info, err)
	}

	var events []string
	// The promised outputs travel to the plugin in the task.
	res, err := e.Run(ctx, executor.Task{Stage: "train", Type: "train", Outputs: []string{"model_uri"}, Attempt: 1}, func(ev executor.Event) { events = append(events, ev.Text) })
	if err != nil || res.Status != executor.Succeeded || res.Outputs["model_uri"] != "noop-train-model_uri" {
		t.Fatalf("run = %+v, %v", res, err)
	}
	if len(events) != 1 || events[0] != "noop: train attempt 1" {
		t.Errorf("events = %q", events)
	}

	res, err = e.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"noop_fail": "retryable"}}, nil)
	if err != nil || res.Status != executor.Failed || !res.Error.Retryable {
		t.Fatalf("failing run = %+v, %v", res, err)
	}

	// Cancelling the caller's context reaches the plugin's Run.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	res, err = e.Run(cctx, executor.Task{Stage: "s", Params: map[string]string{"noop_sleep": "1h"}}, nil)
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("cancelled run = %+v, %v", res, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("cancellation took %s", d)
	}

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(children(t)) - before; n != 0 {
		t.Errorf("%d plugin processes left after the registry closed", n)
	}
}

// TestExampleExecutorIsItsOwnModule checks that examples/executor-shell
// builds as docs/PLUGINS.md tells a third party to build an executor: in a
// module of its own that requires github.com/pipectl/pipectl and replaces
// it with this checkout (the module path is not published). The tests
// that install the example (TestShellExampleThroughTheRegistry,
// executors.txtar, plugin_specs.txtar) use that build.
func TestExampleExecutorIsItsOwnModule(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "executor-shell")
	cmd, err := ownModuleCommand(dir, t.TempDir(), "list", "-m", "-f", "{{.Path}} {{.Dir}}", "all")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all in %s: %v\n%s", dir, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "example.com/pipectl-executor-shell " + abs; lines[0] != want {
		t.Errorf("main module = %q, want %q", lines[0], want)
	}
	root := filepath.Dir(filepath.Dir(abs))
	if !slices.Contains(lines, "github.com/pipectl/pipectl "+root) {
		t.Errorf("github.com/pipectl/pipectl is not replaced by the checkout %s:\n%s", root, out)
	}
	exe := shellExecutor(t)
	if _, err := os.Stat(exe); err != nil {
		t.Fatal(err)
	}
}

// TestShellExampleThroughTheRegistry builds examples/executor-shell into
// a project's .pipectl/plugins, lets the registry discover it and runs
// stages through it.
func TestShellExampleThroughTheRegistry(t *testing.T) {
	root := t.TempDir()
	if err := copyExecutable(shellExecutor(t), filepath.Join(plugin.PluginDir(root), plugin.BinaryPrefix+"shell")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PIPECTL_TEST_TOKEN", "s3cret")
	t.Setenv("PIPECTL_TEST_OTHER", "not passed")
	before := len(children(t))
	app := testApp(t, root)
	if !app.knownExecutor("shell") {
		t.Fatal("validate does not know the installed shell executor")
	}
	reg := app.registry()
	ctx := plugin.WithPassEnv(context.Background(), []string{"PIPECTL_TEST_TOKEN"})
	e, err := reg.Open(ctx, "shell")
	if err != nil {
		t.Fatal(err)
	}
	config := func(cmd string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"command": cmd})
		return b
	}
	run := func(ctx context.Context, cmd string, sink executor.EventSink) (executor.Result, error) {
		return e.Run(ctx, executor.Task{RunID: "r1", Pipeline: "hello", Stage: "greet", Attempt: 1, ProjectRoot: root,
			Params: map[string]string{"c": "0.5"}, Config: config(cmd)}, sink)
	}

	t.Run("streams output, passes params and pass_env only, collects outputs", func(t *testing.T) {
		var mu sync.Mutex
		var lines []string
		res, err := run(ctx, `echo "stage=$PIPECTL_STAGE c=$PIPECTL_PARAM_C token=$PIPECTL_TEST_TOKEN other=${PIPECTL_TEST_OTHER:-unset} cwd=$(pwd)"
echo warning >&2
echo rows=3 >> "$PIPECTL_OUTPUTS"`, func(ev executor.Event) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, ev.Stream+": "+ev.Text)
		})
		if err != nil || res.Status != executor.Succeeded || res.Outputs["rows"] != "3" {
			t.Fatalf("got %+v, %v", res, err)
		}
		want := "stdout: stage=greet c=0.5 token=s3cret other=unset cwd=" + root
		if len(lines) != 2 || !slices.Contains(lines, want) || !slices.Contains(lines, "stderr: warning") {
			t.Errorf("log lines = %q, want %q and the stderr line", lines, want)
		}
	})
	t.Run("a failing command fails the stage", func(t *testing.T) {
		res, err := run(ctx, "exit 3", nil)
		if err != nil || res.Status != executor.Failed || res.Error.Message != "command failed: exit status 3" {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("cancellation kills the command's process group", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pid := make(chan int, 1)
		res, err := run(cctx, "sleep 300 & echo $!; wait", func(ev executor.Event) {
			if n, err := strconv.Atoi(ev.Text); err == nil {
				pid <- n
				cancel()
			}
		})
		if err != nil || res.Status != executor.Cancelled {
			t.Fatalf("got %+v, %v", res, err)
		}
		p := <-pid
		deadline := time.Now().Add(5 * time.Second)
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(p) {
			t.Errorf("the command's child %d survived cancellation", p)
		}
	})
	t.Run("validate reports stages without a command", func(t *testing.T) {
		ds, err := e.Validate(ctx, executor.ValidateRequest{Pipeline: "hello", Target: "dev", Config: json.RawMessage(`{}`),
			Stages: []executor.StageSpec{{Name: "greet"}}})
		if err != nil || len(ds) != 1 || ds[0].Summary != `no command for stage "greet"` || ds[0].Path != "targets.dev.config.command" {
			t.Fatalf("got %+v, %v", ds, err)
		}
	})

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(children(t)) - before; n != 0 {
		t.Errorf("%d plugin processes left after the registry closed", n)
	}
}

// TestCLILeavesNoPluginProcesses runs pipectl as a user does, with
// executors that it starts and stops, and then looks for any process
// still running one of their binaries.
func TestCLILeavesNoPluginProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("scans /proc")
	}
	pipectl, err := exec.LookPath("pipectl")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := copyExecutable(shellExecutor(t), filepath.Join(plugin.PluginDir(root), plugin.BinaryPrefix+"shell")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"executors"}, {"executors", "--json"}} {
		out, err := exec.Command(pipectl, append([]string{"-C", root}, args...)...).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("shell")) {
			t.Fatalf("pipectl %v: %v\n%s", args, err, out)
		}
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if argv[0] == pipectl && len(argv) > 1 && argv[1] == executorCommand || strings.HasPrefix(argv[0], root) {
			t.Errorf("left behind: %s (%q)", f, argv)
		}
	}
}

// TestMisbehavingPluginDoesNotHangTheCLI: a third-party executor that
// leaves children holding its stdout and stderr must not keep `pipectl
// executors` or `pipectl run` alive once it exits (they waited forever).
// The child in the plugin's process group is killed with it; the one that
// left the group is still alive when pipectl returns, which shows that
// pipectl no longer waits for whoever holds the plugin's output.
func TestMisbehavingPluginDoesNotHangTheCLI(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	pipectl, err := exec.LookPath("pipectl")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	pluginDir := plugin.PluginDir(root)
	if err := copyExecutable(exe, filepath.Join(pluginDir, leakyPluginName)); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"notebooks/hello.py": "# Databricks notebook source\n",
		"specs/p.cue": `package pipelines

pipelines: hello: {
	description:    "runs on a misbehaving executor"
	default_target: "dev"
	targets: dev: executor: "leaky"
	stages: greet: {type: "custom", notebook: "notebooks/hello.py"}
}
`,
	}
	for name, body := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, args := range [][]string{{"executors"}, {"run", "hello"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			pidFile := filepath.Join(pluginDir, "leaky.pids")
			_ = os.Remove(pidFile)
			cmd := exec.Command(pipectl, append([]string{"-C", root}, args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			// pipectl's own pipes: the children hold the plugin's, not these.
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var inGroup, escaped int
			readPids := func() {
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatalf("the plugin did not start its children: %v\n%s", err, out.String())
				}
				fields := strings.Fields(string(b))
				inGroup, _ = strconv.Atoi(fields[0])
				escaped, _ = strconv.Atoi(fields[1])
			}
			t.Cleanup(func() {
				for _, pid := range []int{inGroup, escaped} {
					if pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			select {
			case err := <-done:
				readPids()
				if err != nil {
					t.Fatalf("pipectl %v: %v\n%s", args, err, out.String())
				}
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				readPids()
				t.Fatalf("pipectl %v still running after a minute: it waits for the plugin's children to close its output\n%s", args, out.String())
			}
			if !alive(escaped) {
				t.Error("the child that left the plugin's group is dead, so this test proves nothing")
			}
			deadline := time.Now().Add(10 * time.Second)
			for alive(inGroup) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(inGroup) {
				t.Errorf("the plugin's child %d in its process group outlived it", inGroup)
			}
		})
	}
}
