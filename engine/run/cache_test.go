package run

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

func TestCacheHitsAndInvalidation(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a", params: map[string]any{"n": 1}},
		stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"in": "${stages.a.outputs.out}"}},
	)
	first := h.mustRun(pl, Options{})
	if got := statuses(first); got != "a=succeeded b=succeeded" {
		t.Fatalf("first run: %s", got)
	}
	if c := first.Stages["a"].Cache; c == nil || c.Status != "miss" || len(c.Key) != 64 || !slices.Equal(c.Reasons, []string{"new"}) {
		t.Errorf("first run cache info %+v", c)
	}

	steps := []struct {
		name   string
		change func()
		want   string
		// reasonA is why a runs again, when it does.
		reasonA string
	}{
		{"unchanged", func() {}, "a=cached b=cached", ""},
		{"test file of the package", func() { write(t, filepath.Join(h.root, "notebooks/pkg/tests/test_x.py"), "def test(): assert 1\n") }, "a=cached b=cached", ""},
		{"unrelated notebook", func() { write(t, filepath.Join(h.root, "notebooks/other/unrelated.py"), "x = 2\n") }, "a=cached b=cached", ""},
		// a runs again; its output is the same, so b's key is unchanged
		// and b hits.
		{"package module", func() { write(t, filepath.Join(h.root, "notebooks/pkg/mod.py"), "import os\nVALUE = 2\n") }, "a=succeeded b=succeeded", cache.ReasonPackage},
		{"notebook", func() {
			write(t, filepath.Join(h.root, "notebooks/stage.py"), "# Databricks notebook source\nimport json\nfrom pkg import mod\nprint(1)\n")
		}, "a=succeeded b=succeeded", cache.ReasonNotebook},
		{"requirements", func() { write(t, filepath.Join(h.root, "notebooks/requirements.txt"), "scikit-learn==1.9.2\n") }, "a=succeeded b=succeeded", cache.ReasonRequirements},
		{"params", func() { pl.Stages["a"].Params["n"] = 2 }, "a=succeeded b=cached", cache.ReasonParams},
		{"new module in the package", func() { write(t, filepath.Join(h.root, "notebooks/pkg/extra.py"), "Y = 1\n") }, "a=succeeded b=succeeded", cache.ReasonPackage},
	}
	for _, s := range steps {
		s.change()
		rec := h.mustRun(pl, Options{})
		got := statuses(rec)
		// Every stage's inputs include the notebook and package, so b
		// runs again too unless only a's params changed.
		if got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
		if s.reasonA != "" {
			if c := rec.Stages["a"].Cache; c == nil || !slices.Contains(c.Reasons, s.reasonA) {
				t.Errorf("%s: a's cache info %+v, want reason %q", s.name, c, s.reasonA)
			}
		}
	}
	if n := h.fake.callsOf("a"); n != 6 {
		t.Errorf("a ran %d times, want 6", n)
	}
}

func TestCachedStageKeepsOutputsAndMetrics(t *testing.T) {
	h := newHarness(t)
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": "v1"}, Metrics: map[string]float64{"f1": 0.8},
			Links: []executor.Link{{Label: "MLflow run", URL: "http://x"}}}, nil
	}
	pl := testPlan(t, stageDef{name: "a"})
	first := h.mustRun(pl, Options{})
	again := h.mustRun(pl, Options{})
	st := again.Stages["a"]
	if st.Status != record.Cached || st.Outputs["out"] != "v1" || st.Metrics["f1"] != 0.8 || len(st.Links) != 1 {
		t.Errorf("cached stage %+v", st)
	}
	if st.Cache.FromRun != first.ID || st.Cache.Status != "hit" {
		t.Errorf("cache info %+v, want a hit from %s", st.Cache, first.ID)
	}
	if len(st.Attempts) != 0 {
		t.Errorf("a cache hit has attempts: %+v", st.Attempts)
	}
}

func TestMissingOutputsMeanAMiss(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"})
	h.mustRun(pl, Options{})
	h.fake.exists = func(req executor.CheckRequest) bool { return false }
	rec := h.mustRun(pl, Options{})
	st := rec.Stages["a"]
	if st.Status != record.Succeeded || !slices.Equal(st.Cache.Reasons, []string{"outputs missing: gone"}) {
		t.Errorf("status %s, cache %+v", st.Status, st.Cache)
	}
}

func TestNoCacheRunsEverythingAndStillCaches(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"})
	h.mustRun(pl, Options{})
	rec := h.mustRun(pl, Options{NoCache: true})
	if rec.Stages["a"].Status != record.Succeeded || rec.Stages["a"].Cache.Status != "disabled" {
		t.Errorf("--no-cache: %+v", rec.Stages["a"])
	}
	rec = h.mustRun(pl, Options{})
	if rec.Stages["a"].Status != record.Cached || rec.Stages["a"].Cache.FromRun == "" {
		t.Errorf("after --no-cache: %+v", rec.Stages["a"].Cache)
	}
}

func TestPreviewSaysWhatWillRunAndWhy(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a", params: map[string]any{"n": 1}},
		stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"in": "${stages.a.outputs.out}", "k": "x"}},
		stageDef{name: "c", params: map[string]any{"id": "${run.id}"}},
		stageDef{name: "d"},
	)
	preview := func(opts Options) map[string]*Decision {
		p, err := h.runner(pl).Prepare(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*Decision{}
		for _, d := range p.Preview(context.Background()) {
			out[d.Stage] = d
		}
		return out
	}
	ds := preview(Options{})
	for _, s := range []string{"a", "d"} {
		if ds[s].Action != ActRun || ds[s].Why() != "new" {
			t.Errorf("%s before any run: %s (%s)", s, ds[s].Action, ds[s].Why())
		}
	}
	if ds["b"].Why() != "upstream a will run" {
		t.Errorf("b: %s", ds["b"].Why())
	}
	if ds["c"].Why() != ReasonRunID {
		t.Errorf("c: %s", ds["c"].Why())
	}

	h.mustRun(pl, Options{})
	ds = preview(Options{})
	for _, s := range []string{"a", "b", "d"} {
		if ds[s].Action != ActCached {
			t.Errorf("%s after a run: %s (%s)", s, ds[s].Action, ds[s].Why())
		}
	}

	write(t, filepath.Join(h.root, "notebooks/pkg/mod.py"), "VALUE = 3\n")
	pl.Stages["b"].Params["k"] = "y"
	ds = preview(Options{})
	if ds["a"].Why() != cache.ReasonPackage {
		t.Errorf("a: %s", ds["a"].Why())
	}
	if !hasChange(ds["a"].Changes, cache.ReasonPackage, "notebooks/pkg/mod.py: modified") {
		t.Errorf("a's changes %+v", ds["a"].Changes)
	}
	// b waits for a, but what is known to differ is still explained;
	// its reference to a's output is not a change.
	if ds["b"].Why() != "upstream a will run, package changed, params changed" || !hasChange(ds["b"].Changes, cache.ReasonParams, "k: x → y") {
		t.Errorf("b: %s %+v", ds["b"].Why(), ds["b"].Changes)
	}
	for _, c := range ds["b"].Changes {
		if strings.HasPrefix(c.Detail, "in:") {
			t.Errorf("b's changes list the upstream reference: %+v", c)
		}
	}

	// JSON form is stable for plan --json.
	b, _ := json.Marshal(ds["a"])
	if !strings.Contains(string(b), `"action":"run","reasons":["package changed"],"changes":[{"reason":"package changed","detail":"notebooks/pkg/mod.py: modified"}]`) {
		t.Errorf("decision JSON %s", b)
	}
	ds = preview(Options{NoCache: true})
	if ds["d"].Why() != ReasonNoCache {
		t.Errorf("--no-cache: d %s", ds["d"].Why())
	}
}

func hasChange(cs []cache.Change, reason, detail string) bool {
	return slices.ContainsFunc(cs, func(c cache.Change) bool { return c.Reason == reason && c.Detail == detail })
}

func TestOnlyAndFrom(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a"},
		stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"in": "${stages.a.outputs.out}"}},
		stageDef{name: "c", needs: []string{"b"}},
		stageDef{name: "x"},
	)
	_, err := h.run(context.Background(), pl, Options{Only: []string{"b"}})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "b needs the outputs of a, which is not cached and did not succeed in an earlier run of p on local; run it too (add --only a)") {
		t.Fatalf("--only b before any run: %v", err)
	}
	if _, err := h.run(context.Background(), pl, Options{Only: []string{"nope"}}); !errors.As(err, &ue) || !strings.Contains(err.Error(), `no stage "nope"`) {
		t.Errorf("--only nope: %v", err)
	}
	h.mustRun(pl, Options{})
	calls := h.fake.callsOf("b")
	rec := h.mustRun(pl, Options{Only: []string{"b"}})
	if got := statuses(rec); got != "a=cached x=excluded b=succeeded c=excluded" {
		t.Errorf("--only b: %s", got)
	}
	if h.fake.callsOf("b") != calls+1 || h.fake.tasks["b"].Params["in"] != "a" {
		t.Errorf("b did not run with a's output: %+v", h.fake.tasks["b"].Params)
	}
	rec = h.mustRun(pl, Options{From: "b"})
	if got := statuses(rec); got != "a=cached x=excluded b=succeeded c=succeeded" {
		t.Errorf("--from b: %s", got)
	}
	if rec.Options.From != "b" {
		t.Errorf("options %+v", rec.Options)
	}

	// Without a cache entry, the newest earlier run serves the upstream.
	h.fake.exists = func(req executor.CheckRequest) bool { return true }
	pl.Stages["a"].Params["changed"] = "yes" // a's key no longer matches
	rec = h.mustRun(pl, Options{Only: []string{"c"}})
	if rec.Stages["b"].Cache == nil || rec.Stages["b"].Cache.Status == "" {
		t.Errorf("b %+v", rec.Stages["b"])
	}
	if got := rec.Stages["a"].Cache; got == nil || got.Status != "previous-run" {
		t.Errorf("a's outputs from %+v, want previous-run", got)
	}
}

func TestResumeRerunsOnlyWhatDidNotSucceed(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t,
		stageDef{name: "a"},
		stageDef{name: "b", needs: []string{"a"}, params: map[string]any{"in": "${stages.a.outputs.out}"}},
		stageDef{name: "c", needs: []string{"b"}},
		stageDef{name: "d"},
	)
	var mu sync.Mutex
	failB := true
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if task.Stage == "b" && failB {
			return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "bug"}}, nil
		}
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": task.Stage}}, nil
	}
	first, err := h.run(context.Background(), pl, Options{})
	if err == nil || statuses(first) != "a=succeeded d=succeeded b=failed c=skipped" {
		t.Fatalf("first: %v %s", err, statuses(first))
	}
	failB = false
	write(t, filepath.Join(h.root, "notebooks/pkg/mod.py"), "# fixed\n") // a's key changes, but it is reused
	rec, err := h.run(context.Background(), pl, Options{Resume: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != first.ID || rec.Status != record.Succeeded || len(rec.Sessions) != 2 || !rec.Sessions[1].Resume {
		t.Errorf("resumed record: id %s status %s sessions %+v", rec.ID, rec.Status, rec.Sessions)
	}
	if got := statuses(rec); got != "a=succeeded d=succeeded b=succeeded c=succeeded" {
		t.Errorf("after resume: %s", got)
	}
	if h.fake.callsOf("a") != 1 || h.fake.callsOf("d") != 1 || h.fake.callsOf("b") != 2 || h.fake.callsOf("c") != 1 {
		t.Errorf("calls %v", h.fake.calls)
	}
	if a := rec.Stages["b"].Attempts; len(a) != 2 || a[0].Status != record.Failed || a[1].N != 2 || a[1].Status != record.Succeeded {
		t.Errorf("b attempts %+v", a)
	}
	if h.fake.tasks["b"].Params["in"] != "a" || h.fake.tasks["b"].Attempt != 2 {
		t.Errorf("b task %+v", h.fake.tasks["b"])
	}
	if rec.Error != nil {
		t.Errorf("error kept after a successful resume: %+v", rec.Error)
	}
	_, err = h.run(context.Background(), pl, Options{Resume: first.ID})
	if !errors.Is(err, ErrNothingToResume) {
		t.Errorf("resume of a succeeded run: %v", err)
	}
	var ue *UsageError
	if _, err := h.run(context.Background(), pl, Options{Resume: "20990101-000000-000-ffff"}); !errors.As(err, &ue) {
		t.Errorf("resume of an unknown run: %v", err)
	}
}

func TestResumeOfAnInterruptedRun(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"}, stageDef{name: "b", needs: []string{"a"}})
	first := h.mustRun(pl, Options{})
	// Rewrite it as a process killed while b ran.
	store := h.runner(pl).Records
	rec, _ := store.Load(first.ID)
	rec.Status = record.Running
	rec.Owner.PID = 1 << 30 // no such process
	rec.Owner.ProcessStart = ""
	rec.Stages["b"].Status = record.Running
	rec.Stages["b"].Attempts = []record.Attempt{{N: 1, Status: record.Running}}
	if err := store.Save(rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.Effective(); got != record.Interrupted {
		t.Fatalf("effective status %s, want interrupted", got)
	}
	pl.Stages["b"].Params["v"] = 2 // no cache entry serves b now
	out, err := h.run(context.Background(), pl, Options{Resume: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	b := out.Stages["b"]
	if out.Status != record.Succeeded || b.Attempts[0].Status != record.Interrupted || b.Attempts[1].Status != record.Succeeded {
		t.Errorf("resumed: %s, b attempts %+v", out.Status, b.Attempts)
	}
}

// Readers (pipectl runs, a concurrent resume check) must never see a torn
// run.json while a run rewrites it on every event.
func TestRecordsAreNeverTorn(t *testing.T) {
	h := newHarness(t)
	var defs []stageDef
	for i := range 40 {
		defs = append(defs, stageDef{name: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26)), params: map[string]any{"i": i}})
	}
	pl := testPlan(t, defs...)
	store := h.runner(pl).Records
	stop := make(chan struct{})
	var reads, bad int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ids, _ := store.IDs()
			for _, id := range ids {
				if _, err := store.Load(id); err != nil {
					if bad == 0 {
						t.Log(err)
					}
					bad++
				}
				reads++
			}
		}
	}()
	for range 3 {
		h.mustRun(pl, Options{Parallelism: 8, NoCache: true})
	}
	close(stop)
	wg.Wait()
	if bad > 0 {
		t.Errorf("%d of %d reads saw a torn or missing run.json", bad, reads)
	}
	if reads == 0 {
		t.Error("the reader never read")
	}
}

// A resume keeps the run's --no-cache: its unfinished stages run again
// even where the cache has an entry (docs/RUNS.md), and asking for
// --no-cache on a run started without it is a usage error.
func TestResumeKeepsNoCache(t *testing.T) {
	h := newHarness(t)
	pl := testPlan(t, stageDef{name: "a"}, stageDef{name: "b", needs: []string{"a"}})
	h.mustRun(pl, Options{}) // caches a and b
	var mu sync.Mutex
	failB := true
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if task.Stage == "b" && failB {
			return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "bug"}}, nil
		}
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": task.Stage}}, nil
	}
	first, err := h.run(context.Background(), pl, Options{NoCache: true})
	if err == nil || statuses(first) != "a=succeeded b=failed" {
		t.Fatalf("no-cache run: %v %s", err, statuses(first))
	}
	failB = false
	rec, err := h.run(context.Background(), pl, Options{Resume: first.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(rec); got != "a=succeeded b=succeeded" {
		t.Errorf("after resume: %s (b must run again, not come from the cache)", got)
	}
	if n := h.fake.callsOf("b"); n != 3 {
		t.Errorf("b ran %d times, want 3 (first run, --no-cache run, resume)", n)
	}
	if why := rec.Stages["b"].Attempts; len(why) != 2 {
		t.Errorf("b attempts %+v", why)
	}

	// The opposite: --no-cache on the resume of a run without it.
	failB = true
	plain, err := h.run(context.Background(), pl, Options{Only: []string{"b"}})
	if err == nil {
		t.Fatalf("run with b failing succeeded: %s", statuses(plain))
	}
	var ue *UsageError
	if _, err := h.run(context.Background(), pl, Options{Resume: plain.ID, NoCache: true}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "drop --no-cache") {
		t.Errorf("--no-cache on a resume of a run without it: %v", err)
	}
}
