package databricks_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// BenchmarkStagePolling runs a stage whose notebook sleeps for a while and
// measures, from the emulator's side, how the executor follows it: the
// delay between the run terminating and the first runs/get that shows it
// (notice-ms), the time from termination until Run returned (return-ms,
// which adds runs/get-output), the steady-state gap between polls
// (gap-ms: median gap after the first 10 s; the goal is >= 2000) and the API
// calls of one stage by endpoint. Run with -benchtime=3x or more:
//
//	go test ./plugins/databricks -run '^$' -bench StagePolling -benchtime 5x
func BenchmarkStagePolling(b *testing.B) {
	for _, secs := range []int{5, 30} {
		b.Run(fmt.Sprintf("notebook=%ds", secs), func(b *testing.B) {
			r := newBenchRig(b)
			var notices, returns, gaps []float64
			calls := map[string]int{}
			b.ResetTimer()
			for i := range b.N {
				before := r.e.Calls()
				task := r.task("sleepy", "sleep.py", map[string]string{"seconds": fmt.Sprint(secs)})
				task.RunID = fmt.Sprintf("bench-%d-%d", secs, i)
				res, err := r.x.Run(context.Background(), task, func(executor.Event) {})
				returned := time.Now()
				if err != nil || res.Status != executor.Succeeded {
					b.Fatalf("%v %+v", err, res.Error)
				}
				after := r.e.Calls()
				for ep, n := range after {
					calls[ep] += n - before[ep]
				}
				ids := r.e.RunIDs()
				st, _ := r.e.RunStats(ids[len(ids)-1])
				notices = append(notices, ms(st.FirstSeenTerminated.Sub(st.TerminatedAt)))
				returns = append(returns, ms(returned.Sub(st.TerminatedAt)))
				for k := 1; k < len(st.Gets); k++ {
					if st.Gets[k].Sub(st.Gets[0]) > 10*time.Second {
						gaps = append(gaps, ms(st.Gets[k].Sub(st.Gets[k-1])))
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(median(notices), "notice-ms")
			b.ReportMetric(slices.Max(notices), "max-notice-ms")
			b.ReportMetric(median(returns), "return-ms")
			if len(gaps) > 0 {
				b.ReportMetric(median(gaps), "gap-ms")
				b.ReportMetric(slices.Min(gaps), "min-gap-ms")
			}
			var parts []string
			for _, ep := range slices.Sorted(maps.Keys(calls)) {
				if calls[ep] > 0 {
					per := float64(calls[ep]) / float64(b.N)
					parts = append(parts, fmt.Sprintf("%s=%.1f", ep, per))
					if strings.HasSuffix(ep, "/runs/get") {
						b.ReportMetric(per, "runs-get/stage")
					}
				}
			}
			b.Logf("API calls per stage (notebook %ds, %d runs): %s", secs, b.N, strings.Join(parts, " "))
		})
	}
}

func newBenchRig(b *testing.B) *rig {
	return newRigTB(b, emulator.Options{})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
