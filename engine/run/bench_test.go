package run

import (
	"context"
	"fmt"
	"testing"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
)

// benchPlan is 50 stages in 10 layers of 5; each stage needs two stages of
// the layer before and reads an output of one.
func benchPlan(b *testing.B) *plan.Plan {
	var defs []stageDef
	for l := range 10 {
		for i := range 5 {
			d := stageDef{name: fmt.Sprintf("s%d_%d", l, i), params: map[string]any{"i": i}}
			if l > 0 {
				a, c := fmt.Sprintf("s%d_%d", l-1, i), fmt.Sprintf("s%d_%d", l-1, (i+1)%5)
				d.needs = []string{a, c}
				d.params = map[string]any{"in": "${stages." + a + ".outputs.out}"}
			}
			defs = append(defs, d)
		}
	}
	t := &testing.T{}
	return testPlan(t, defs...)
}

func benchHarness(b *testing.B) *harness {
	h := &harness{t: &testing.T{}, root: newProjectIn(b, b.TempDir()), fake: newFake()}
	h.fake.run = func(ctx context.Context, t executor.Task, sink executor.EventSink) (executor.Result, error) {
		return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"out": t.Stage}}, nil
	}
	return h
}

// BenchmarkRunnerOverhead50 is the runner's own cost for 50 stages whose
// executor does nothing: scheduling, keys (hashing notebook and package),
// run.json rewrites, logs and cache entries, all on disk.
func BenchmarkRunnerOverhead50(b *testing.B) {
	h := benchHarness(b)
	pl := benchPlan(b)
	for b.Loop() {
		r := h.runner(pl)
		p, err := r.Prepare(context.Background(), Options{Parallelism: 4, NoCache: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Execute(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/50, "µs/stage")
}

// BenchmarkCachedRerun50 is a re-run of the same 50 stages where every
// stage is a cache hit.
func BenchmarkCachedRerun50(b *testing.B) {
	h := benchHarness(b)
	pl := benchPlan(b)
	run := func() {
		r := h.runner(pl)
		p, err := r.Prepare(context.Background(), Options{Parallelism: 4})
		if err != nil {
			b.Fatal(err)
		}
		rec, err := p.Execute(context.Background(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if b.N > 0 && rec.Counts()["cached"] != 50 && rec.ID != "" && h.fake.callsOf("s0_0") > 1 {
			b.Fatalf("not cached: %v", rec.Counts())
		}
	}
	run() // warm the cache
	for b.Loop() {
		run()
	}
	if n := h.fake.callsOf("s0_0"); n != 1 {
		b.Fatalf("s0_0 ran %d times; the re-runs were not cached", n)
	}
}
