package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/pyenv"
)

// Benchmarks of the local executor's fixed costs, on the shared test state
// (see local_test.go). Run with, e.g.:
//
//	go test ./plugins/local -run '^$' -bench . -benchtime 5x
//
// BenchmarkEnsureCold builds a venv from scratch each iteration (pip's cache
// helps); it only runs with PIPECTL_BENCH_COLD=1.

func requirementsOf(f *fixture) string {
	return filepath.Join(f.project, PythonDir, "requirements.txt")
}

// BenchmarkEnsureWarm is the fast path every pipectl run takes once: probe
// the interpreter, hash, read the marker.
func BenchmarkEnsureWarm(b *testing.B) {
	f := getFixture(b)
	opts := pyenv.Options{Python: os.Getenv("PIPECTL_PYTHON"), Requirements: requirementsOf(f), Dir: f.state, MinVersion: MinPython}
	if _, err := pyenv.Ensure(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		env, err := pyenv.Ensure(context.Background(), opts)
		if err != nil || env.Created {
			b.Fatalf("%v, created %v", err, env != nil && env.Created)
		}
	}
}

func BenchmarkEnsureCold(b *testing.B) {
	if os.Getenv("PIPECTL_BENCH_COLD") != "1" {
		b.Skip("set PIPECTL_BENCH_COLD=1: builds a full venv per iteration")
	}
	f := getFixture(b)
	for b.Loop() {
		dir := b.TempDir()
		env, err := pyenv.Ensure(context.Background(), pyenv.Options{Python: os.Getenv("PIPECTL_PYTHON"),
			Requirements: requirementsOf(f), Dir: dir, MinVersion: MinPython})
		if err != nil || !env.Created {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerStart is the MLflow server's start-up on an existing store,
// until /health answers: through the in-process launcher and through the
// plain `mlflow server` command; and on a new store (schema migrations).
func BenchmarkServerStart(b *testing.B) {
	f := getFixture(b)
	env, err := pyenv.Ensure(context.Background(), pyenv.Options{Python: os.Getenv("PIPECTL_PYTHON"),
		Requirements: requirementsOf(f), Dir: f.state, MinVersion: MinPython})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("launcher-fresh-store", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			store := NewStore(b.TempDir())
			b.StartTimer()
			s := startServer(store, env.Python, os.Environ(), DefaultServerTimeout, 0)
			if _, err := s.Wait(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s.Close()
			b.StartTimer()
		}
	})
	for _, inProcess := range []bool{true, false} {
		name := map[bool]string{true: "launcher", false: "mlflow-cli"}[inProcess]
		b.Run(name, func(b *testing.B) {
			inProcessServer = inProcess
			defer func() { inProcessServer = true }()
			for b.Loop() {
				s := startServer(NewStore(f.state), env.Python, os.Environ(), DefaultServerTimeout, 0)
				if _, err := s.Wait(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRunToFirstCell is the time from Run to the first line a notebook
// prints (Python start-up, the runner, parsing, the first cell), and the
// whole Run of a trivial notebook, with the venv ready. Data stages do not
// wait for the MLflow server.
func BenchmarkRunToFirstCell(b *testing.B) {
	f := getFixture(b)
	task := f.task("echo.py", map[string]string{"count": "0"})
	var firstCell, total time.Duration
	// Warm the executor: venv found, server started.
	if _, err := f.e.Run(context.Background(), task, func(executor.Event) {}); err != nil {
		b.Fatal(err)
	}
	task.Type = "data" // does not wait for the MLflow server
	for b.Loop() {
		start := time.Now()
		var once sync.Once
		res, err := f.e.Run(context.Background(), task, func(ev executor.Event) {
			if ev.Kind == executor.EventLog && strings.HasPrefix(ev.Text, "first cell") {
				once.Do(func() { firstCell += time.Since(start) })
			}
		})
		total += time.Since(start)
		// A data stage must exit with a value; echo.py does.
		if err != nil || res.Status != executor.Succeeded {
			b.Fatalf("%v %+v", err, res.Error)
		}
	}
	b.ReportMetric(float64(firstCell.Milliseconds())/float64(b.N), "ms/first-cell")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/run")
}

// BenchmarkCheckOutputsModel is one registry lookup (SQLite, read-only).
func BenchmarkCheckOutputsModel(b *testing.B) {
	f := getFixture(b)
	task := f.task("track.py", map[string]string{"model_name": "pipectl_bench_check", "steps": "1"})
	task.Type = "train"
	res, err := f.e.Run(context.Background(), task, func(executor.Event) {})
	if err != nil || res.Status != executor.Succeeded {
		b.Fatalf("%v %+v", err, res.Error)
	}
	req := executor.CheckRequest{Task: task, Outputs: res.Outputs}
	b.ResetTimer()
	for b.Loop() {
		got, err := f.e.CheckOutputs(context.Background(), req)
		if err != nil || !got.Exists {
			b.Fatalf("%+v %v", got, err)
		}
	}
}
