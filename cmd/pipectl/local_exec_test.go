package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// descendants lists the live processes below pid (children, their
// children, ...), from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(fields) > 1 && fields[0] != "Z" {
			p, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			pp, _ := strconv.Atoi(fields[1])
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// TestLocalThroughSelfExec runs the repository's data notebook on the
// bundled sample through the local built-in as pipectl reaches it: a
// `pipectl __executor local` process over gRPC. It then cancels a train
// stage mid-run, and checks that closing the registry leaves none of the
// processes the executor started (notebooks, guards, the MLflow server).
//
// The venv and MLflow store are shared with plugins/local's tests
// ($PIPECTL_TEST_STATE or <user cache>/pipectl/test-state).
func TestLocalThroughSelfExec(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a venv and runs MLflow (skipped with -short)")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	state := sharedTestState(t)
	before := len(children(t))
	app := testApp(t, repo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e, err := app.registry().Open(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	kids := children(t)
	if len(kids)-before != 1 {
		t.Fatalf("%d child processes after opening local, want 1 (the plugin)", len(kids)-before)
	}
	plugin := kids[len(kids)-1]

	out := t.TempDir()
	cfg, _ := json.Marshal(map[string]string{"data_root": filepath.Join(out, "data"), "output_root": filepath.Join(out, "predictions")})
	task := executor.Task{RunID: "selfexec-" + strconv.FormatInt(time.Now().UnixNano(), 36), Pipeline: "sentiment", Target: "local",
		Stage: "data", Type: "data", Notebook: "notebooks/create_data.py", ProjectRoot: repo, StateDir: state, Attempt: 1, Config: cfg,
		Params: map[string]string{"data_name": "financial_news", "data_version": "v1", "source": "data/sample/financial_news.csv"}}
	var mu sync.Mutex
	var logs []string
	res, err := e.Run(ctx, task, func(ev executor.Event) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, string(ev.Kind)+" "+ev.Text)
	})
	if err != nil || res.Status != executor.Succeeded {
		t.Fatalf("data stage: %+v, %v\n%s", res, err, strings.Join(logs, "\n"))
	}
	if want := filepath.Join(out, "data", "financial_news", "v1"); res.Outputs["data_path"] != want {
		t.Errorf("data_path %q, want %q", res.Outputs["data_path"], want)
	}
	if len(logs) == 0 {
		t.Error("no events crossed the plugin protocol")
	}
	check, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: res.Outputs})
	if err != nil || !check.Exists {
		t.Errorf("CheckOutputs = %+v, %v", check, err)
	}

	// Cancel a train stage as soon as it prints: the cancellation crosses
	// gRPC and stops the notebook.
	train := task
	train.Stage, train.Type, train.Notebook = "train", "train", "notebooks/train_model.py"
	train.Params = map[string]string{"data_name": "financial_news", "data_version": "v1", "model_name": "selfexec_test",
		"model_type": "naive_bayes"}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var once sync.Once
	res, err = e.Run(cctx, train, func(ev executor.Event) {
		if ev.Kind == executor.EventLog {
			once.Do(stop)
		}
	})
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("cancelled train stage: %+v, %v", res, err)
	}

	started := descendants(plugin)
	if len(started) == 0 {
		t.Error("no MLflow server below the plugin process")
	}
	if err := app.Registry.Close(); err != nil {
		t.Fatal(err)
	}
	app.Registry = nil
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range append(started, plugin) {
		for alive(pid) {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				t.Fatalf("process %d outlived the registry: %q", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
