package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// TestSentimentStagesOnSample runs the repository's real notebooks on the
// bundled sample (data/sample/financial_news.csv) through the executor:
// data, two trainings at once, evaluate, inference; CheckOutputs finds what
// each produced (the registered model versions among them).
func TestSentimentStagesOnSample(t *testing.T) {
	f := getFixture(t)
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "notebooks", "create_data.py")); err != nil {
		t.Skipf("the stage notebooks are not in %s yet", root)
	}
	// An executor of its own: its MLflow server starts with the data stage,
	// as in a pipectl run.
	e := New(Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Grace: 2 * time.Second})
	defer e.Close()
	ctx := testCtx(t)
	id := newID()
	out := t.TempDir()
	cfg, _ := json.Marshal(Config{DataRoot: filepath.Join(out, "data"), OutputRoot: filepath.Join(out, "predictions")})
	base := executor.Task{RunID: "it-" + id, Pipeline: "sentiment", Target: "local", ProjectRoot: root,
		StateDir: f.state, Attempt: 1, Config: cfg}

	data := base
	data.Stage, data.Type, data.Notebook = "data", "data", "notebooks/create_data.py"
	data.Params = map[string]string{"data_name": "financial_news", "data_version": "it-" + id,
		"source": "data/sample/financial_news.csv", "seed": "42"}
	var rec events
	start := time.Now()
	res := run(t, ctx, e, data, &rec)
	t.Logf("data stage: %s", time.Since(start).Round(time.Millisecond))
	if res.Status != executor.Succeeded {
		t.Fatalf("data: %s %+v\n%s", res.Status, res.Error, rec.text())
	}
	if want := filepath.Join(out, "data", "financial_news", "it-"+id); res.Outputs["data_path"] != want {
		t.Errorf("data_path %q, want %q", res.Outputs["data_path"], want)
	}
	if res.Metrics["rows_train"] <= 0 {
		t.Errorf("metrics %v, want rows_train > 0", res.Metrics)
	}
	if got, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: data, Outputs: res.Outputs}); err != nil || !got.Exists {
		t.Errorf("CheckOutputs(data) = %+v, %v", got, err)
	}

	// Two trainings at once, as in the pipeline.
	model := "it_sentiment_" + id
	types := []string{"naive_bayes", "logistic_regression"}
	trains := make([]executor.Task, len(types))
	results := make([]executor.Result, len(types))
	recs := make([]events, len(types))
	var wg sync.WaitGroup
	for i, typ := range types {
		trains[i] = base
		trains[i].Stage, trains[i].Type, trains[i].Notebook = "train_"+typ, "train", "notebooks/train_model.py"
		trains[i].Params = map[string]string{"data_name": res.Outputs["data_name"], "data_version": res.Outputs["data_version"],
			"model_name": model, "model_type": typ, "model_params": "{}", "seed": "42"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			results[i] = run(t, ctx, e, trains[i], &recs[i])
			t.Logf("train %s stage: %s", typ, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	e.mu.Lock()
	srv := e.servers[f.state]
	e.mu.Unlock()
	t.Logf("MLflow server start-up (from the data stage's start): %s", srv.readyAt.Sub(srv.startedAt).Round(time.Millisecond))
	var candidates []string
	for i, res := range results {
		if res.Status != executor.Succeeded {
			t.Fatalf("train %s: %s %+v\n%s", types[i], res.Status, res.Error, recs[i].text())
		}
		if res.Outputs["model_name"] != model || res.Outputs["model_uri"] != "models:/"+model+"/"+res.Outputs["model_version"] {
			t.Errorf("train outputs %v", res.Outputs)
		}
		if res.Metrics["accuracy"] <= 0 {
			t.Errorf("train metrics %v, want accuracy", res.Metrics)
		}
		got, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: trains[i], Outputs: res.Outputs})
		if err != nil || !got.Exists {
			t.Errorf("CheckOutputs(train) = %+v, %v: the registered version should exist", got, err)
		}
		if len(res.Links) != 2 || !strings.Contains(res.Links[0].URL, "/runs/"+res.Outputs["run_id"]) {
			t.Errorf("links %v, want the MLflow run and the model version", res.Links)
		}
		candidates = append(candidates, res.Outputs["model_uri"])
	}

	eval := base
	eval.Stage, eval.Type, eval.Notebook = "evaluate", "evaluate", "notebooks/evaluate_models.py"
	cands, _ := json.Marshal(candidates)
	eval.Params = map[string]string{"candidates": string(cands), "data_name": "financial_news", "data_version": "it-" + id}
	rec = events{}
	start = time.Now()
	res = run(t, ctx, e, eval, &rec)
	t.Logf("evaluate stage: %s", time.Since(start).Round(time.Millisecond))
	if res.Status != executor.Succeeded || res.Outputs["decision"] != "first" {
		t.Fatalf("evaluate: %s %+v, outputs %v\n%s", res.Status, res.Error, res.Outputs, rec.text())
	}
	if got, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: eval, Outputs: res.Outputs}); err != nil || !got.Exists {
		t.Errorf("CheckOutputs(evaluate) = %+v, %v", got, err)
	}

	infer := base
	infer.Stage, infer.Type, infer.Notebook = "inference", "inference", "notebooks/run_inference.py"
	infer.Params = map[string]string{"model": "models:/" + model + "@champion", "data_name": "financial_news",
		"data_version": "it-" + id, "split": "holdout"}
	rec = events{}
	start = time.Now()
	res = run(t, ctx, e, infer, &rec)
	t.Logf("inference stage: %s", time.Since(start).Round(time.Millisecond))
	if res.Status != executor.Succeeded {
		t.Fatalf("inference: %s %+v\n%s", res.Status, res.Error, rec.text())
	}
	if want := filepath.Join(out, "predictions", "predictions", "it-"+id); !strings.HasPrefix(res.Outputs["predictions_path"], want) {
		t.Errorf("predictions_path %q, want it under %s", res.Outputs["predictions_path"], want)
	}
	if got, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: infer, Outputs: res.Outputs}); err != nil || !got.Exists {
		t.Errorf("CheckOutputs(inference) = %+v, %v", got, err)
	}
	// Nothing landed in the project directory: artifacts went to the store.
	if _, err := os.Stat(filepath.Join(root, "mlruns")); err == nil {
		t.Errorf("%s/mlruns exists: artifacts were written outside the store", root)
	}
}
