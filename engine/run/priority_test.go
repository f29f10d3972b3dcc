package run

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

// earlierRun records a finished run of pipeline p on target with the given
// stage durations (ms) and statuses, an hour ago.
func earlierRun(t *testing.T, h *harness, pipeline, target string, stages map[string]int64, status record.Status) {
	t.Helper()
	store := &record.Store{Dir: filepath.Join(h.root, ".pipectl", "runs")}
	rec := &record.Run{Pipeline: pipeline, Target: target, Status: record.Succeeded, Stages: map[string]*record.Stage{}}
	for name, ms := range stages {
		rec.Order = append(rec.Order, name)
		rec.Stages[name] = &record.Stage{Status: status, DurationMS: ms}
	}
	if err := store.Create(rec, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// startOrder runs the fan-out plan one stage at a time and returns the
// order in which the stages started.
func startOrder(t *testing.T, h *harness) []string {
	t.Helper()
	var mu sync.Mutex
	var order []string
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		mu.Lock()
		order = append(order, task.Stage)
		mu.Unlock()
		return executor.Result{Status: executor.Succeeded}, nil
	}
	pl := testPlan(t, stageDef{name: "data"},
		stageDef{name: "a_short", needs: []string{"data"}}, stageDef{name: "b_long", needs: []string{"data"}},
		stageDef{name: "c_mid", needs: []string{"data"}},
		stageDef{name: "end", needs: []string{"a_short", "b_long", "c_mid"}})
	h.mustRun(pl, Options{Parallelism: 1, NoCache: true})
	return order
}

func TestLongestPathStartsFirst(t *testing.T) {
	plain := []string{"data", "a_short", "b_long", "c_mid", "end"}
	tests := map[string]struct {
		earlier func(t *testing.T, h *harness)
		want    []string
	}{
		"first run: plan order": {func(*testing.T, *harness) {}, plain},
		"longest expected first": {func(t *testing.T, h *harness) {
			earlierRun(t, h, "p", "local", map[string]int64{"data": 5, "a_short": 10, "b_long": 900, "c_mid": 300, "end": 1}, record.Succeeded)
		}, []string{"data", "b_long", "c_mid", "a_short", "end"}},
		"another pipeline or target does not count": {func(t *testing.T, h *harness) {
			earlierRun(t, h, "other", "local", map[string]int64{"c_mid": 900}, record.Succeeded)
			earlierRun(t, h, "p", "prod", map[string]int64{"c_mid": 900}, record.Succeeded)
		}, plain},
		"only successes count (a cached stage took no time)": {func(t *testing.T, h *harness) {
			earlierRun(t, h, "p", "local", map[string]int64{"c_mid": 900}, record.Failed)
		}, plain},
		"a stage without history counts as zero": {func(t *testing.T, h *harness) {
			earlierRun(t, h, "p", "local", map[string]int64{"c_mid": 50}, record.Succeeded)
		}, []string{"data", "c_mid", "a_short", "b_long", "end"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tc.earlier(t, h)
			if got := startOrder(t, h); !slices.Equal(got, tc.want) {
				t.Errorf("stages started in order %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLongestPathCountsWhatWaits(t *testing.T) {
	// x is short but has a long stage waiting for it; y is long alone.
	h := newHarness(t)
	earlierRun(t, h, "p", "local", map[string]int64{"x": 10, "x_then": 1000, "y": 500}, record.Succeeded)
	var order []string
	h.fake.run = func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
		order = append(order, task.Stage)
		return executor.Result{Status: executor.Succeeded}, nil
	}
	h.mustRun(testPlan(t, stageDef{name: "x"}, stageDef{name: "x_then", needs: []string{"x"}}, stageDef{name: "y"}),
		Options{Parallelism: 1, NoCache: true})
	if want := []string{"x", "x_then", "y"}; !slices.Equal(order, want) {
		t.Errorf("stages started in order %v, want %v", order, want)
	}
}
