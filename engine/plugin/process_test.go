package plugin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// These tests run real plugin processes: the test binary re-executed in
// "serve" mode (see TestMain).

func testExe(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func testConfig(t testing.TB, env ...string) Config {
	return Config{Name: "test", Path: testExe(t), Env: append([]string{testModeEnv + "=serve"}, env...), Logger: testLogger(t)}
}

func startTest(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// children lists the live child processes of this process (Linux).
func children(t testing.TB) []int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("counts child processes through /proc")
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	me := os.Getpid()
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == me {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, pid)
		}
	}
	return out
}

func assertNoChildren(t *testing.T) {
	t.Helper()
	if kids := children(t); len(kids) > 0 {
		t.Errorf("plugin processes left behind: %v", kids)
	}
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func TestHandshakeIsTheFirstLineOnStdout(t *testing.T) {
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), testModeEnv+"=serve", MagicCookieKey+"="+MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^1\|1\|(unix|tcp)\|.*\|grpc`).MatchString(line) {
		t.Errorf("first stdout line = %q, want the go-plugin handshake", line)
	}
}

func TestServeRefusesToRunByHand(t *testing.T) {
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), testModeEnv+"=serve")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || len(out) != 0 {
		t.Fatalf("got stdout %q, err %v; want nothing on stdout and exit 1", out, err)
	}
	if !strings.Contains(string(ee.Stderr), "not meant to be run by hand") {
		t.Errorf("stderr = %q", ee.Stderr)
	}
}

func TestPluginProcessLifecycle(t *testing.T) {
	assertNoChildren(t)
	closeMarker := filepath.Join(t.TempDir(), "closed")
	c := startTest(t, testConfig(t, "PIPECTL_TEST_CLOSE_MARKER="+closeMarker))
	if info := c.Info(); info.Name != "test" || info.Version != "0.0.1" || info.Protocol != 1 {
		t.Errorf("Info = %+v", info)
	}
	ctx := context.Background()

	t.Run("success streams events in order", func(t *testing.T) {
		var mu sync.Mutex
		var n int
		res, err := c.Run(ctx, executor.Task{Stage: "s", Attempt: 1, Params: map[string]string{"events": "50"}}, func(e executor.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Kind == executor.EventLog && e.Text != "line "+strconv.Itoa(n) {
				t.Errorf("event %d = %q", n, e.Text)
			}
			n++
		})
		if err != nil || res.Status != executor.Succeeded || n != 52 {
			t.Fatalf("got %+v, %v after %d events", res, err, n)
		}
	})
	t.Run("failure", func(t *testing.T) {
		res, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"fail": "true"}}, nil)
		if err != nil || res.Status != executor.Failed {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("cancel reaches the plugin", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "cancelled")
		ctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		var once sync.Once
		go func() { <-started; cancel() }()
		t0 := time.Now()
		res, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"pid": "true", "sleep": "1h", "marker": marker}},
			func(executor.Event) { once.Do(func() { close(started) }) })
		if err != nil || res.Status != executor.Cancelled || res.Error.Message != "stopped: context canceled" {
			t.Fatalf("got %+v, %v", res, err)
		}
		if b, err := os.ReadFile(marker); err != nil || string(b) != "context canceled" {
			t.Errorf("the plugin's Run did not see the cancellation: %q, %v", b, err)
		}
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("cancellation took %s", d)
		}
	})
	t.Run("a plugin killed mid-stage is a clear error", func(t *testing.T) {
		_, err := c.Run(ctx, executor.Task{Stage: "train", Params: map[string]string{"die": "kill"}}, nil)
		if !errors.Is(err, ErrExited) {
			t.Fatalf("err = %v, want ErrExited", err)
		}
		if want := `executor "test" exited unexpectedly (signal: killed) while running stage "train"`; !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to contain %q", err, want)
		}
	})
	t.Run("the next stage starts the plugin again", func(t *testing.T) {
		res, err := c.Run(ctx, executor.Task{Stage: "s"}, nil)
		if err != nil || res.Status != executor.Succeeded {
			t.Fatalf("got %+v, %v", res, err)
		}
	})
	t.Run("an exit mid-stage is a clear error", func(t *testing.T) {
		_, err := c.Run(ctx, executor.Task{Stage: "train", Params: map[string]string{"die": "exit"}}, nil)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "(exit status 3)") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("close shuts the plugin down gracefully", func(t *testing.T) {
		if _, err := c.Describe(ctx); err != nil { // restarts it
			t.Fatal(err)
		}
		if len(children(t)) != 1 {
			t.Fatalf("children = %v, want the one plugin", children(t))
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		assertNoChildren(t)
		if b, err := os.ReadFile(closeMarker); err != nil || string(b) != "closed" {
			t.Errorf("the executor was not closed: %v", err)
		}
		if _, err := c.Run(ctx, executor.Task{Stage: "s"}, nil); err == nil {
			t.Error("Run after Close must fail")
		}
	})
}

func TestHostContextCancelledMidStageLeavesNoPlugin(t *testing.T) {
	assertNoChildren(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := startTest(t, testConfig(t))
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	res, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"sleep": "1h"}}, nil)
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("got %+v, %v", res, err)
	}
	c.Close()
	assertNoChildren(t)
}

func TestSIGTERMCancelsRunningStages(t *testing.T) {
	c := startTest(t, testConfig(t))
	pid := make(chan int, 1)
	res, err := c.Run(context.Background(), executor.Task{Stage: "s", Params: map[string]string{"pid": "true", "sleep": "1h"}},
		func(e executor.Event) {
			if p, ok := strings.CutPrefix(e.Text, "pid="); ok {
				n, _ := strconv.Atoi(p)
				pid <- n
				_ = syscall.Kill(n, syscall.SIGTERM)
			}
		})
	if err != nil || res.Status != executor.Cancelled || res.Error.Message != "stopped: received SIGTERM" {
		t.Fatalf("got %+v, %v", res, err)
	}
	p := <-pid
	deadline := time.Now().Add(10 * time.Second)
	for alive(p) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(p) {
		t.Error("the plugin did not exit after SIGTERM")
	}
}

// TestPluginExitsWhenHostIsKilled covers go-plugin issue #210: a host
// killed with SIGKILL cannot stop its plugins, so they must notice and
// exit, cancelling what they run.
func TestPluginExitsWhenHostIsKilled(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "cancelled")
	host := exec.Command(testExe(t))
	host.Env = append(os.Environ(), testModeEnv+"=host", "PIPECTL_TEST_MARKER="+marker)
	stdout, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = host.Process.Kill()
		t.Fatalf("host said nothing: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid=")))
	if err != nil {
		t.Fatalf("host said %q", line)
	}
	if err := host.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = host.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("the plugin outlived its host")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the running stage was not cancelled before the plugin exited: %v", err)
	}
}

func TestStartFailuresSayWhy(t *testing.T) {
	exe := testExe(t)
	sum := sha256.Sum256([]byte("not the binary"))
	tests := map[string]struct {
		cfg     Config
		problem Problem
		reason  string
	}{
		"wrong protocol version": {
			cfg:     Config{Env: []string{testModeEnv + "=serve", "PIPECTL_TEST_SERVE_PROTOCOL=2"}},
			problem: ProblemWrongProtocol, reason: "it speaks protocol 2, pipectl speaks protocol 1",
		},
		"wrong protocol in Describe": {
			cfg:     Config{Env: []string{testModeEnv + "=serve", "PIPECTL_TEST_DESCRIBE_PROTOCOL=7"}},
			problem: ProblemWrongProtocol, reason: "it describes protocol 7, pipectl speaks 1",
		},
		"stdout before the handshake": {
			cfg:     Config{Env: []string{testModeEnv + "=noise"}},
			problem: ProblemHandshake, reason: `it printed "hello from a chatty init" instead of the plugin handshake`,
		},
		"exits before the handshake": {
			cfg:     Config{Env: []string{testModeEnv + "=crash"}},
			problem: ProblemHandshake, reason: "it exited before the handshake (exit status 3); it said: cannot load config: boom",
		},
		"checksum mismatch": {
			cfg:     Config{Env: []string{testModeEnv + "=serve"}, Checksum: sum[:]},
			problem: ProblemChecksum, reason: "SHA256SUMS",
		},
		"name mismatch": {
			cfg:     Config{Env: []string{testModeEnv + "=serve", "PIPECTL_TEST_NAME=other"}},
			problem: ProblemNameMismatch, reason: `it describes itself as "other"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name, cfg.Path, cfg.Logger, cfg.StartTimeout = "test", exe, testLogger(t), 20*time.Second
			c, err := Start(context.Background(), cfg)
			if err == nil {
				c.Close()
				t.Fatal("started")
			}
			var se *StartError
			if !errors.As(err, &se) || se.Problem != tc.problem || !strings.Contains(se.Reason, tc.reason) {
				t.Fatalf("err = %v\nwant problem %q with %q", err, tc.problem, tc.reason)
			}
			assertNoChildren(t)
		})
	}
	t.Run("not executable", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "pipectl-executor-x")
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), Config{Name: "x", Path: f, Logger: testLogger(t)})
		var se *StartError
		if !errors.As(err, &se) || se.Problem != ProblemNotExecutable {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestIsolatedPluginsSeeOnlyAllowedAndPassedVariables(t *testing.T) {
	environ := append(os.Environ(), "PIPECTL_TEST_SECRET=s3cret", "PIPECTL_TEST_OTHER=x")
	run := func(t *testing.T, passEnv []string, name string) map[string]string {
		cfg := testConfig(t)
		cfg.Isolated, cfg.AutoMTLS = true, true
		cfg.Env = append(PluginEnv(environ, passEnv), testModeEnv+"=serve")
		c := startTest(t, cfg)
		res, err := c.Run(context.Background(), executor.Task{Stage: "s", Params: map[string]string{"getenv": name}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Outputs
	}
	if out := run(t, nil, "PIPECTL_TEST_SECRET"); out["env_set"] != "false" {
		t.Errorf("a variable the target does not pass reached the plugin: %q", out["env"])
	}
	if out := run(t, []string{"PIPECTL_TEST_SECRET"}, "PIPECTL_TEST_SECRET"); out["env"] != "s3cret" {
		t.Errorf("pass_env did not reach the plugin: %+v", out)
	}
	if out := run(t, []string{"PIPECTL_TEST_SECRET"}, "PIPECTL_TEST_OTHER"); out["env_set"] != "false" {
		t.Error("pass_env let through a variable it does not name")
	}
	if out := run(t, nil, "PATH"); out["env_set"] != "true" {
		t.Error("PATH is on the allow-list but did not reach the plugin")
	}
}

// TestChildHoldingPluginOutputDoesNotHoldUpTheHost: a plugin that leaves
// children holding its stdout and stderr must not keep pipectl waiting
// for them to close when it exits. The children in its process group die
// with it; one that left the group is no longer waited for.
func TestChildHoldingPluginOutputDoesNotHoldUpTheHost(t *testing.T) {
	leaky := func(t *testing.T) (*Client, int, int) {
		t.Helper()
		pids := filepath.Join(t.TempDir(), "pids")
		cfg := testConfig(t, "PIPECTL_TEST_PIDS="+pids)
		cfg.Env[0] = testModeEnv + "=leaky"
		c, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(pids)
		if err != nil {
			t.Fatal(err)
		}
		var inGroup, escaped int
		if _, err := fmt.Sscan(string(b), &inGroup, &escaped); err != nil {
			t.Fatalf("pids %q: %v", b, err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(inGroup, syscall.SIGKILL)
			_ = syscall.Kill(escaped, syscall.SIGKILL)
		})
		return c, inGroup, escaped
	}
	// returns fails the test when f has not returned after a minute: on
	// the code before the fix it never did.
	returns := func(t *testing.T, what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("%s still waiting after a minute for the plugin's children to close its output", what)
		}
	}
	groupChildDies := func(t *testing.T, pid int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("the plugin's child %d in its process group outlived it", pid)
		}
	}

	t.Run("close", func(t *testing.T) {
		c, inGroup, escaped := leaky(t)
		if res, err := c.Run(context.Background(), executor.Task{Stage: "s"}, nil); err != nil || res.Status != executor.Succeeded {
			t.Fatalf("got %+v, %v", res, err)
		}
		returns(t, "Close", func() { c.Close() })
		if !alive(escaped) {
			t.Error("the child that left the group is dead, so this test proves nothing")
		}
		groupChildDies(t, inGroup)
	})
	t.Run("exit mid-stage", func(t *testing.T) {
		c, inGroup, escaped := leaky(t)
		var err error
		returns(t, "Run", func() {
			_, err = c.Run(context.Background(), executor.Task{Stage: "train", Params: map[string]string{"die": "exit"}}, nil)
		})
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "(exit status 3)") {
			t.Errorf("err = %v, want ErrExited with its exit status", err)
		}
		returns(t, "Close", func() { c.Close() })
		if !alive(escaped) {
			t.Error("the child that left the group is dead, so this test proves nothing")
		}
		groupChildDies(t, inGroup)
	})
}
