package run

import (
	"cmp"
	"slices"
	"time"

	"github.com/pipectl/pipectl/engine/record"
)

// historyRuns bounds how many earlier runs of the pipeline priorityOrder
// reads (and five times that, the records it opens).
const historyRuns = 20

// priorityOrder is the order in which schedule starts ready stages when
// more are ready than may run at once: the longest remaining path first,
// that is a stage's expected duration plus the longest chain of stages
// that wait for it. Expected durations are those of the newest earlier
// runs of the pipeline on the target where the stage ran and succeeded;
// stages without one count as zero, and ties keep plan order (which is
// all a first run gets). On 2 cores, starting the two long trainings of
// the B1 pipeline before the short one shortens the run by the
// short one's duration (B1 in docs/BENCHMARKS.md).
func (e *execution) priorityOrder() []string {
	e.mu.Lock()
	order := slices.Clone(e.rec.Order)
	needs := make(map[string][]string, len(order))
	for _, name := range order {
		needs[name] = e.rec.Stages[name].Needs
	}
	self, pipeline, target := e.rec.ID, e.rec.Pipeline, e.rec.Target
	e.mu.Unlock()

	expected := e.r.expectedDurations(self, pipeline, target, order)
	if len(expected) == 0 {
		return order
	}
	waiting := map[string][]string{} // stage -> stages that need it
	for _, name := range order {
		for _, n := range needs[name] {
			waiting[n] = append(waiting[n], name)
		}
	}
	rank := map[string]time.Duration{}
	var rankOf func(string) time.Duration
	rankOf = func(name string) time.Duration {
		if r, ok := rank[name]; ok {
			return r
		}
		rank[name] = 0 // a cycle cannot happen (the plan is a DAG); this ends recursion anyway
		var longest time.Duration
		for _, w := range waiting[name] {
			longest = max(longest, rankOf(w))
		}
		rank[name] = expected[name] + longest
		return rank[name]
	}
	for _, name := range order {
		rankOf(name)
	}
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(rank[b], rank[a]) })
	return order
}

// expectedDurations reads the newest earlier runs of pipeline on target
// (at most historyRuns) for the duration of each stage's last success.
func (r *Runner) expectedDurations(self, pipeline, target string, stages []string) map[string]time.Duration {
	ids, err := r.Records.IDs()
	if err != nil {
		return nil
	}
	out := map[string]time.Duration{}
	read, loaded := 0, 0
	for i := len(ids) - 1; i >= 0 && read < historyRuns && loaded < 5*historyRuns && len(out) < len(stages); i-- {
		if ids[i] == self {
			continue
		}
		loaded++
		rec, err := r.Records.Load(ids[i])
		if err != nil || rec.Pipeline != pipeline || rec.Target != target {
			continue
		}
		read++
		for _, name := range stages {
			st := rec.Stages[name]
			if _, ok := out[name]; ok || st == nil || st.Status != record.Succeeded {
				continue
			}
			out[name] = time.Duration(st.DurationMS) * time.Millisecond
		}
	}
	return out
}
