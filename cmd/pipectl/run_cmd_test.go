package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/record"
)

// These tests run pipectl as a real process (the copy testscript.Main puts
// on PATH) to kill it, interrupt it and race two runs.

const sleepySpec = `package pipelines

pipelines: sleepy: {
	description: "a stage that sleeps"
	targets: local: executor: "noop"
	stages: {
		first: {type: "custom", notebook: "notebooks/c.py", outputs: ["x"], params: noop_output_x: "1"}
		slow: {type: "custom", notebook: "notebooks/c.py", params: {in: "${stages.first.outputs.x}", noop_sleep: "SLEEP"}}
		after: {type: "custom", notebook: "notebooks/c.py", needs: ["slow"]}
	}
}
`

func sleepyProject(t *testing.T, sleep string) string {
	t.Helper()
	dir := t.TempDir()
	writeSpec(t, dir, sleep)
	if err := os.MkdirAll(filepath.Join(dir, "notebooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notebooks", "c.py"), []byte("# Databricks notebook source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeSpec(t *testing.T, dir, sleep string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "specs"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "specs", "s.cue"), []byte(strings.ReplaceAll(sleepySpec, "SLEEP", sleep)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pipectl(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("pipectl", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GITHUB_ACTIONS=")
	return cmd
}

// startPipectl starts pipectl in dir in the background, its stdout and
// stderr together in the returned buffer; the test's cleanup kills it.
func startPipectl(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := pipectl(dir, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out
}

type result struct {
	code           int
	stdout, stderr string
}

func runPipectl(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runCmd(t, pipectl(dir, args...))
}

// runCmd runs cmd to its end and returns its exit code and output.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// startSlow starts a run and waits until its slow stage runs; it returns
// the process and the run id.
func startSlow(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	cmd := pipectl(dir, append([]string{"run", "sleepy", "-j", "1"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	store := &record.Store{Dir: filepath.Join(dir, ".pipectl", "runs")}
	var id string
	waitFor(t, "the slow stage to start", func() bool {
		ids, _ := store.IDs()
		for _, i := range ids {
			if r, err := store.Load(i); err == nil && r.Stages["slow"].Status == record.Running && r.Owner.PID == cmd.Process.Pid {
				id = i
				return true
			}
		}
		return false
	})
	return cmd, &out, id
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func showRun(t *testing.T, dir, id string) *record.Run {
	t.Helper()
	return decodeRun(t, runPipectl(t, dir, "runs", "show", id, "--json"))
}

// decodeRun reads the record `pipectl runs show --json` printed.
func decodeRun(t *testing.T, r result) *record.Run {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("runs show: %d %s", r.code, r.stderr)
	}
	var rec record.Run
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

func TestKilledRunIsInterruptedAndResumable(t *testing.T) {
	dir := sleepyProject(t, "1h")
	cmd, _, id := startSlow(t, dir)

	// A second run of the same pipeline and target stops at once, naming
	// the running one.
	second := runPipectl(t, dir, "run", "sleepy")
	if second.code != 1 || !strings.Contains(second.stderr, "sleepy on target local is already running as run "+id+" (PID "+itoa(cmd.Process.Pid)+",") {
		t.Fatalf("second run: exit %d, stderr %q", second.code, second.stderr)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup at all
		t.Fatal(err)
	}
	cmd.Wait()

	list := runPipectl(t, dir, "runs")
	if !strings.Contains(list.stdout, id+"  sleepy    local   interrupted") {
		t.Errorf("runs after kill -9:\n%s", list.stdout)
	}
	if rec := showRun(t, dir, id); rec.Status != record.Interrupted || rec.Stages["slow"].Status != record.Interrupted {
		t.Errorf("runs show: %s, slow %s", rec.Status, rec.Stages["slow"].Status)
	}

	// Fix the stage and resume: the stale lock is noticed, the record is
	// marked interrupted, and only slow and after run.
	writeSpec(t, dir, "1ms")
	res := runPipectl(t, dir, "run", "sleepy", "--resume", id)
	if res.code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "pipectl: run "+id+" was interrupted (its process "+itoa(cmd.Process.Pid)+" is gone)") {
		t.Errorf("resume did not report the stale lock:\n%s", res.stderr)
	}
	rec := showRun(t, dir, id)
	if rec.Status != record.Succeeded || len(rec.Sessions) != 2 {
		t.Fatalf("after resume: %s, %d sessions", rec.Status, len(rec.Sessions))
	}
	if a := rec.Stages["first"].Attempts; len(a) != 1 {
		t.Errorf("first ran again: %+v", a)
	}
	if a := rec.Stages["slow"].Attempts; len(a) != 2 || a[0].Status != record.Interrupted || a[1].Status != record.Succeeded {
		t.Errorf("slow attempts %+v", a)
	}
	if rec.Sessions[0].Status != record.Interrupted || rec.Sessions[1].Status != record.Succeeded {
		t.Errorf("sessions %+v", rec.Sessions)
	}
}

func TestSecondRunWaits(t *testing.T) {
	dir := sleepyProject(t, "1ms")
	first, _, id := startSlow(t, dir, "--set", "slow.noop_sleep=1h")

	second := pipectl(dir, "run", "sleepy", "--wait", "-j", "1")
	stderr, err := second.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Process.Kill(); second.Wait() })
	var lines []string
	waiting := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "pipectl: waiting: sleepy on local is already running as run "+id) {
				close(waiting)
			}
		}
	}()
	select {
	case <-waiting:
	case <-done:
		t.Fatalf("the second run did not wait:\n%s", strings.Join(lines, "\n"))
	}
	// Stop the first run; the second takes the lock and runs.
	first.Process.Signal(os.Interrupt)
	first.Wait()
	<-done
	if err := second.Wait(); err != nil {
		t.Fatalf("waiting run: %v\n%s", err, strings.Join(lines, "\n"))
	}
	// Each run has its own record, neither touched by the other.
	if rec := showRun(t, dir, id); rec.Status != record.Cancelled || len(rec.Sessions) != 1 {
		t.Errorf("first run's record: %s, %d sessions", rec.Status, len(rec.Sessions))
	}
	if rec := showRun(t, dir, "latest"); rec.ID == id || rec.Status != record.Succeeded {
		t.Errorf("second run's record: %s %s", rec.ID, rec.Status)
	}
}

func TestInterruptCancelsRunningStages(t *testing.T) {
	dir := sleepyProject(t, "1h")
	cmd, out, id := startSlow(t, dir)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	rec := showRun(t, dir, id)
	if rec.Status != record.Cancelled || rec.Stages["slow"].Status != record.Cancelled || rec.Stages["after"].Status != record.Skipped {
		t.Errorf("record: run %s, slow %s, after %s", rec.Status, rec.Stages["slow"].Status, rec.Stages["after"].Status)
	}
	for _, want := range []string{"pipectl: cancelling running stages", "[slow] cancelled", "run " + id + " cancelled"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The lock was released: the next run starts at once.
	writeSpec(t, dir, "1ms")
	if res := runPipectl(t, dir, "run", "sleepy"); res.code != 0 {
		t.Errorf("next run: %d %s", res.code, res.stderr)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestVerboseReachesBuiltins: `run -v` puts PIPECTL_VERBOSE=1 in the
// environment of built-in executors (and so of their notebooks, which
// then keep MLflow's own messages); without -v it is not set.
func TestVerboseReachesBuiltins(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		app := &App{Getenv: func(string) string { return "" }, Verbose: verbose}
		cfg, err := app.builtinConfig("local")
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(cfg.Env, verboseEnv+"=1"); got != verbose {
			t.Errorf("verbose %v: env %v", verbose, cfg.Env)
		}
	}
}
