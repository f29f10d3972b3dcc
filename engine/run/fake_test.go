package run

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/engine/spec"
)

// fake is an in-process executor whose behaviour each test sets.
type fake struct {
	mu         sync.Mutex
	running    int
	maxRunning int
	calls      map[string]int
	tasks      map[string]executor.Task
	// run decides an attempt; nil succeeds with outputs {out: <stage>}.
	run func(ctx context.Context, t executor.Task, sink executor.EventSink) (executor.Result, error)
	// exists answers CheckOutputs; nil says yes.
	exists func(req executor.CheckRequest) bool
	checks int
}

var _ executor.Executor = (*fake)(nil)

func newFake() *fake { return &fake{calls: map[string]int{}, tasks: map[string]executor.Task{}} }

func (f *fake) Describe(ctx context.Context) (executor.Info, error) {
	return executor.Info{Name: "fake", Protocol: executor.ProtocolVersion}, nil
}

func (f *fake) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	return nil, nil
}

func (f *fake) Run(ctx context.Context, t executor.Task, sink executor.EventSink) (executor.Result, error) {
	f.mu.Lock()
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.calls[t.Stage]++
	f.tasks[t.Stage] = t
	run := f.run
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	sink(executor.Event{Kind: executor.EventLog, Stream: "stdout", Text: "hello from " + t.Stage})
	if run != nil {
		return run(ctx, t, sink)
	}
	return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": t.Stage}}, nil
}

func (f *fake) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if f.exists != nil && !f.exists(req) {
		return executor.CheckResult{Exists: false, Reason: "gone"}, nil
	}
	return executor.CheckResult{Exists: true}, nil
}

func (f *fake) callsOf(stage string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[stage]
}

// stageDef describes a test stage: name, needs and params.
type stageDef struct {
	name    string
	needs   []string
	params  map[string]any
	retries int
	backoff time.Duration
	timeout time.Duration
}

// project is a temporary project with a notebook, a local package and a
// requirements file.
func newProject(t *testing.T) string {
	t.Helper()
	return newProjectIn(t, t.TempDir())
}

func newProjectIn(t testing.TB, root string) string {
	t.Helper()
	files := map[string]string{
		"notebooks/stage.py":              "# Databricks notebook source\nimport json\nfrom pkg import mod\n",
		"notebooks/pkg/__init__.py":       "",
		"notebooks/pkg/mod.py":            "import os\nVALUE = 1\n",
		"notebooks/pkg/tests/test_x.py":   "def test(): pass\n",
		"notebooks/requirements.txt":      "scikit-learn==1.9.1\n",
		"notebooks/other/unrelated.py":    "x = 1\n",
		"notebooks/pkg/__pycache__/m.pyc": "junk",
	}
	for name, content := range files {
		write(t, filepath.Join(root, name), content)
	}
	return root
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// Hashes are remembered by size and mtime: make every write visible.
	future := time.Now().Add(time.Duration(writes.Add(1)) * time.Second)
	os.Chtimes(path, future, future)
}

// testPlan builds a plan of custom stages on target "local" with executor
// "fake".
func testPlan(t *testing.T, defs ...stageDef) *plan.Plan {
	t.Helper()
	g := dag.New()
	stages := map[string]*plan.Stage{}
	for _, d := range defs {
		g.AddNode(d.name)
	}
	for _, d := range defs {
		for _, n := range d.needs {
			g.AddEdge(n, d.name)
		}
		params := d.params
		if params == nil {
			params = map[string]any{}
		}
		stages[d.name] = &plan.Stage{Name: d.name, Type: "custom", Notebook: "notebooks/stage.py", Executor: "fake",
			Needs: g.Needs(d.name), Retries: d.retries, RetryBackoff: d.backoff, Timeout: d.timeout,
			Params: params, ExecutorConfig: []byte(`{"root": "x"}`)}
	}
	for _, d := range defs {
		stages[d.name].Needs = g.Needs(d.name)
	}
	layers, err := g.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return &plan.Plan{
		Pipeline: &spec.Pipeline{Name: "p", Hash: "spechash"},
		Target:   &spec.Target{Name: "local", Executor: "fake"},
		Stages:   stages, Layers: layers, Graph: g,
	}
}

type harness struct {
	t      *testing.T
	root   string
	fake   *fake
	events []Event
	mu     sync.Mutex
	delays []time.Duration
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, root: newProject(t), fake: newFake()}
}

func (h *harness) runner(pl *plan.Plan) *Runner {
	state := filepath.Join(h.root, ".pipectl")
	return &Runner{
		Plan: pl,
		Open: func(ctx context.Context, name string) (executor.Executor, error) {
			if name != "fake" {
				return nil, fmt.Errorf("unknown executor %q", name)
			}
			return h.fake, nil
		},
		ProjectRoot: h.root, StateDir: state,
		Records: &record.Store{Dir: filepath.Join(state, "runs")},
		Cache:   &cache.Store{Dir: filepath.Join(state, "cache")},
		Hasher:  cache.NewHasher(h.root),
		Version: "test",
		Sink: func(ev Event) {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		},
		after: func(d time.Duration) <-chan time.Time {
			h.mu.Lock()
			h.delays = append(h.delays, d)
			h.mu.Unlock()
			ch := make(chan time.Time, 1)
			ch <- time.Now()
			return ch
		},
	}
}

// run prepares and executes pl with opts.
func (h *harness) run(ctx context.Context, pl *plan.Plan, opts Options) (*record.Run, error) {
	h.t.Helper()
	h.mu.Lock()
	h.events = nil
	h.mu.Unlock()
	r := h.runner(pl)
	p, err := r.Prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p.Execute(ctx, nil)
}

func (h *harness) mustRun(pl *plan.Plan, opts Options) *record.Run {
	h.t.Helper()
	rec, err := h.run(context.Background(), pl, opts)
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	return rec
}

func (h *harness) eventsOf(typ EventType) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, ev := range h.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func statuses(rec *record.Run) string {
	var parts []string
	for _, n := range rec.Order {
		parts = append(parts, n+"="+string(rec.Stages[n].Status))
	}
	return strings.Join(parts, " ")
}
