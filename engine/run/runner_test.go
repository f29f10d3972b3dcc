package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

func TestParallelismIsBoundedAndUsed(t *testing.T) {
	h := newHarness(t)
	var defs []stageDef
	for i := range 10 {
		defs = append(defs, stageDef{name: fmt.Sprintf("s%02d", i)})
	}
	started := make(chan string)
	release := make(chan struct{})
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		started <- task.Stage
		<-release
		return executor.Result{Status: executor.Succeeded}, nil
	}
	done := make(chan *record.Run)
	go func() { done <- h.mustRun(testPlan(t, defs...), Options{Parallelism: 3}) }()
	// Three start at once; each release lets exactly one more start.
	for range 3 {
		<-started
	}
	for range 7 {
		release <- struct{}{}
		<-started
	}
	for range 3 {
		release <- struct{}{}
	}
	rec := <-done
	if h.fake.maxRunning != 3 {
		t.Errorf("max concurrent stages %d, want 3", h.fake.maxRunning)
	}
	if rec.Status != record.Succeeded {
		t.Errorf("status %s", rec.Status)
	}
	if rec.Options.Parallelism != 3 {
		t.Errorf("recorded parallelism %d", rec.Options.Parallelism)
	}
}

func TestFailureSkipsDependentsAndReportsOneRootCause(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a"},
		stageDef{name: "b", needs: []string{"a"}},
		stageDef{name: "c", needs: []string{"b"}},
		stageDef{name: "d", needs: []string{"c"}},
		stageDef{name: "e", needs: []string{"a"}},
		stageDef{name: "f"},
	)
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		if task.Stage == "b" {
			return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "boom in b", Detail: "Traceback..."}}, nil
		}
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": task.Stage}}, nil
	}
	rec, err := h.run(context.Background(), pl, Options{Parallelism: 2})
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *FailedError", err)
	}
	want := "a=succeeded f=succeeded b=failed e=succeeded c=skipped d=skipped"
	if got := statuses(rec); got != want {
		t.Errorf("statuses\n got %s\nwant %s", got, want)
	}
	if rec.Error == nil || rec.Error.Stage != "b" || rec.Error.Message != "boom in b" {
		t.Errorf("root cause %+v, want stage b", rec.Error)
	}
	if msg := err.Error(); strings.Count(msg, "boom") != 1 || strings.Contains(msg, "c") && strings.Contains(msg, "stage c") {
		t.Errorf("error %q should name the root cause once", msg)
	}
	if got := rec.Stages["c"].Reason; got != "upstream b failed" {
		t.Errorf("c reason %q", got)
	}
	if got := rec.Stages["d"].Reason; got != "upstream b failed" {
		t.Errorf("d reason %q", got)
	}
	if h.fake.callsOf("c") != 0 || h.fake.callsOf("d") != 0 {
		t.Error("a dependent of the failed stage ran")
	}
	var failedEvents int
	for _, ev := range h.eventsOf(StageFinished) {
		if ev.Error != nil {
			failedEvents++
		}
	}
	if failedEvents != 1 {
		t.Errorf("%d stage_finished events carry an error, want 1", failedEvents)
	}
	if fin := h.eventsOf(RunFinished); len(fin) != 1 || fin[0].Status != record.Failed || fin[0].RunError.Stage != "b" {
		t.Errorf("run_finished %+v", fin)
	}
}

func TestCancellationCancelsEveryRunningStage(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a"}, stageDef{name: "b"}, stageDef{name: "c"},
		stageDef{name: "d", needs: []string{"a"}},
	)
	started := make(chan string, 3)
	var sawCancel sync.Map
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		started <- task.Stage
		<-ctx.Done()
		sawCancel.Store(task.Stage, true)
		return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "stopped"}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range 3 {
			<-started
		}
		cancel()
	}()
	rec, err := h.run(ctx, pl, Options{Parallelism: 4})
	var fe *FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	if got, want := statuses(rec), "a=cancelled b=cancelled c=cancelled d=skipped"; got != want {
		t.Errorf("statuses\n got %s\nwant %s", got, want)
	}
	for _, s := range []string{"a", "b", "c"} {
		if _, ok := sawCancel.Load(s); !ok {
			t.Errorf("stage %s never saw its context cancelled", s)
		}
		if a := rec.Stages[s].Attempts; len(a) != 1 || a[0].Status != record.Cancelled {
			t.Errorf("stage %s attempts %+v", s, a)
		}
	}
	if rec.Status != record.Cancelled {
		t.Errorf("run status %s, want cancelled", rec.Status)
	}
	// The record on disk says the same: nothing is left running.
	disk, err := h.runner(pl).Records.Load(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if statuses(disk) != statuses(rec) || disk.Status != record.Cancelled {
		t.Errorf("on disk: %s %s", disk.Status, statuses(disk))
	}
}

func TestSecondInterruptForcesTheStop(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "stubborn"}, stageDef{name: "after", needs: []string{"stubborn"}})
	started := make(chan struct{})
	unblock := make(chan struct{})
	defer close(unblock)
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		close(started)
		<-unblock // ignores ctx, as a hung plugin would
		return executor.Result{Status: executor.Succeeded}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	go func() {
		<-started
		cancel()
		close(force)
	}()
	rec, err := h.run(ctx, pl, Options{Force: force})
	if err == nil {
		t.Fatal("want an error")
	}
	if got, want := statuses(rec), "stubborn=cancelled after=skipped"; got != want {
		t.Errorf("statuses %s, want %s", got, want)
	}
	if !strings.Contains(rec.Stages["stubborn"].Reason, "forced") {
		t.Errorf("reason %q", rec.Stages["stubborn"].Reason)
	}
}

func TestRetriesOnlyRetryableFailuresWithBackoff(t *testing.T) {
	tests := map[string]struct {
		results  []executor.Result
		errs     []error
		attempts int
		status   record.Status
		delays   []time.Duration
	}{
		"retryable then success": {
			results:  []executor.Result{retryable(), retryable(), ok()},
			attempts: 3, status: record.Succeeded, delays: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		},
		"plain failure is not retried": {
			results:  []executor.Result{{Status: executor.Failed, Error: &executor.Failure{Message: "bad data"}}},
			attempts: 1, status: record.Failed,
		},
		"executor error is retried": {
			results:  []executor.Result{{}, ok()},
			errs:     []error{errors.New("plugin crashed"), nil},
			attempts: 2, status: record.Succeeded, delays: []time.Duration{10 * time.Millisecond},
		},
		"retries run out": {
			results:  []executor.Result{retryable(), retryable(), retryable(), retryable()},
			attempts: 4, status: record.Failed,
			delays: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			pl := testPlan(t, stageDef{name: "s", retries: 3, backoff: 10 * time.Millisecond})
			n := 0
			var attempts []int
			h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
				attempts = append(attempts, task.Attempt)
				i := n
				n++
				var err error
				if i < len(tc.errs) {
					err = tc.errs[i]
				}
				return tc.results[i], err
			}
			rec, _ := h.run(context.Background(), pl, Options{})
			st := rec.Stages["s"]
			if len(st.Attempts) != tc.attempts || st.Status != tc.status {
				t.Errorf("%d attempts, status %s; want %d, %s", len(st.Attempts), st.Status, tc.attempts, tc.status)
			}
			if diff := cmp.Diff(tc.delays, h.delays); diff != "" {
				t.Errorf("backoff delays (-want +got):\n%s", diff)
			}
			for i, a := range attempts {
				if a != i+1 {
					t.Errorf("attempt numbers %v", attempts)
					break
				}
			}
			if got := len(h.eventsOf(StageRetrying)); got != len(tc.delays) {
				t.Errorf("%d stage_retrying events, want %d", got, len(tc.delays))
			}
		})
	}
}

func retryable() executor.Result {
	return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "cluster lost", Retryable: true}}
}

func ok() executor.Result { return executor.Result{Status: executor.Succeeded} }

func TestBackoffDoublesUpToACap(t *testing.T) {
	got := []time.Duration{Backoff(10*time.Second, 1), Backoff(10*time.Second, 2), Backoff(10*time.Second, 3), Backoff(20*time.Minute, 2)}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 30 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}

func TestTimeoutFailsTheAttemptWithoutRetry(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "slow", timeout: 20 * time.Millisecond, retries: 2, backoff: time.Millisecond})
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the attempt has no deadline")
		}
		<-ctx.Done()
		return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled"}}, nil
	}
	rec, err := h.run(context.Background(), pl, Options{})
	if err == nil {
		t.Fatal("want a failure")
	}
	st := rec.Stages["slow"]
	if st.Status != record.Failed || len(st.Attempts) != 1 || !st.Attempts[0].TimedOut {
		t.Fatalf("status %s, attempts %+v", st.Status, st.Attempts)
	}
	if !strings.Contains(st.Error.Message, "timed out after 20ms") {
		t.Errorf("message %q", st.Error.Message)
	}
	if h.fake.tasks["slow"].Timeout != 20*time.Millisecond {
		t.Errorf("task timeout %v", h.fake.tasks["slow"].Timeout)
	}
}

func TestOutputsAndRunValuesAreSubstituted(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a"},
		stageDef{name: "b", params: map[string]any{
			"from_a":  "${stages.a.outputs.out}/x",
			"run":     "${run.id}",
			"date":    "${run.date}",
			"list":    []any{"${stages.a.outputs.out}", "lit"},
			"escaped": "$${not.a.ref}",
		}},
	)
	pl.Stages["b"].Needs = []string{"a"}
	pl.Graph.AddEdge("a", "b")
	pl.Layers = [][]string{{"a"}, {"b"}}
	r := h.runner(pl)
	fixed := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r.Now = func() time.Time { return fixed }
	p, err := r.Prepare(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := p.Execute(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := h.fake.tasks["b"].Params
	want := map[string]string{"from_a": "a/x", "run": rec.ID, "date": "2026-03-04", "list": `["a","lit"]`, "escaped": "${not.a.ref}"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, rec.Stages["b"].Params); diff != "" {
		t.Errorf("recorded params (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(rec.ID, "20260304-050607-000-") {
		t.Errorf("run id %s does not start with the start time", rec.ID)
	}
}

func TestMissingUpstreamOutputFailsTheStage(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"}, stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"x": "${stages.a.outputs.nope}"}})
	rec, err := h.run(context.Background(), pl, Options{})
	if err == nil {
		t.Fatal("want a failure")
	}
	if st := rec.Stages["b"]; st.Status != record.Failed || !strings.Contains(st.Error.Message, `stage "a" has no output "nope"`) {
		t.Errorf("b: %s %+v", st.Status, st.Error)
	}
}

func TestLogsKeepEveryAttemptWithTimestamps(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "s", retries: 1, backoff: time.Millisecond})
	n := 0
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		n++
		sink(executor.Event{Kind: executor.EventLog, Stream: "stderr", Text: fmt.Sprintf("line of attempt %d\nsecond line", n)})
		sink(executor.Event{Kind: executor.EventLink, Link: &executor.Link{Label: "MLflow run", URL: "http://mlflow/run/1"}})
		if n == 1 {
			return retryable(), nil
		}
		return executor.Result{Status: executor.Succeeded, Links: []executor.Link{{Label: "MLflow run", URL: "http://mlflow/run/1"}, {Label: "model", URL: "http://m"}}}, nil
	}
	rec := h.mustRun(pl, Options{})
	store := h.runner(pl).Records
	all, err := store.ReadLog(rec.ID, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := store.ReadLog(rec.ID, "s", 2)
	if len(second) == 0 || len(second) >= len(all) {
		t.Fatalf("attempt 2 has %d of %d lines", len(second), len(all))
	}
	var texts []string
	for _, l := range second {
		if l.Attempt != 2 || l.Time == "" {
			t.Errorf("line %q", l.Raw)
		}
		texts = append(texts, l.Stream+": "+l.Text)
	}
	for _, want := range []string{"stderr: line of attempt 2", "stderr: second line", "link: MLflow run http://mlflow/run/1"} {
		if !slices.Contains(texts, want) {
			t.Errorf("attempt 2 log lacks %q: %q", want, texts)
		}
	}
	if links := rec.Stages["s"].Links; len(links) != 2 {
		t.Errorf("links %+v, want 2 deduplicated", links)
	}
	fi, err := os.Stat(store.LogPath(rec.ID, "s"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v %v", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(filepath.Join(store.Dir, rec.ID))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("run dir mode %v", di.Mode().Perm())
	}
}

// TestTaskCarriesPromisedOutputs: the outputs a stage promises (its type's,
// from the schema) reach the executor in the task, so that no executor
// keeps its own list.
func TestTaskCarriesPromisedOutputs(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"})
	pl.Stages["a"].Outputs = []string{"out", "rows"}
	h.mustRun(pl, Options{})
	if got := h.fake.tasks["a"].Outputs; !slices.Equal(got, []string{"out", "rows"}) {
		t.Errorf("task outputs %q, want [out rows]", got)
	}
}
