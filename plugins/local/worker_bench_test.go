//go:build unix

package local

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// testCleanups run after every test and benchmark of the package (TestMain).
var testCleanups []func()

var (
	plainOnce sync.Once
	plainExec *Executor
)

// plainExecutor is an executor that starts stages as plain processes,
// shared by the benchmarks of one test process.
func plainExecutor() *Executor {
	plainOnce.Do(func() {
		plainExec = New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second, NoWorker: true})
		testCleanups = append(testCleanups, func() { plainExec.Close() })
	})
	return plainExec
}

// BenchmarkStageStartup is B6 of docs/BENCHMARKS.md: the time from Run (the
// stage's dispatch) to the notebook's first cell, and to the end of its
// imports of MLflow, scikit-learn and pandas (testdata/notebooks/startup.py),
// for a stage forked by the warm stage worker ("worker") and for a plain
// `python -m pipectl_runner` process ("plain"), alternating in one
// invocation. The worker has finished preloading, as it has for every stage
// but the first of a run. Run with, e.g.:
//
//	go test ./plugins/local -run '^$' -bench StageStartup -benchtime 1x -count 5
func BenchmarkStageStartup(b *testing.B) {
	f := getFixture(b)
	modes := []struct {
		name string
		e    *Executor
	}{{"plain", plainExecutor()}, {"worker", f.e}}
	task := f.task("startup.py", nil)
	task.Type = "data" // does not wait for the MLflow server
	measure := func(e *Executor) (firstCell, imports, total time.Duration) {
		start := time.Now()
		res, err := e.Run(context.Background(), task, func(ev executor.Event) {
			if ev.Kind != executor.EventLog {
				return
			}
			switch ev.Text {
			case "first cell":
				firstCell = ev.Time.Sub(start)
			case "imports done":
				imports = ev.Time.Sub(start)
			}
		})
		total = time.Since(start)
		if err != nil || res.Status != executor.Succeeded || firstCell == 0 || imports == 0 {
			b.Fatalf("%v %+v (first cell %v, imports %v)", err, res.Error, firstCell, imports)
		}
		return firstCell, imports, total
	}
	for _, m := range modes {
		measure(m.e) // venv found, server started, worker started
	}
	waitPreloaded(b, workerOf(b, f.e))
	sums := map[string]*[3]time.Duration{"plain": {}, "worker": {}}
	n := 0
	b.ResetTimer()
	for b.Loop() {
		// Alternate which goes first: the machine is shared and noisy.
		order := modes
		if n%2 == 1 {
			order = []struct {
				name string
				e    *Executor
			}{modes[1], modes[0]}
		}
		for _, m := range order {
			fc, im, tot := measure(m.e)
			s := sums[m.name]
			s[0] += fc
			s[1] += im
			s[2] += tot
		}
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	for _, name := range []string{"plain", "worker"} {
		s := sums[name]
		b.ReportMetric(ms(s[0]), "ms/first-cell-"+name)
		b.ReportMetric(ms(s[1]), "ms/imports-"+name)
		b.ReportMetric(ms(s[2]), "ms/run-"+name)
	}
	b.ReportMetric(0, "ns/op")
}
