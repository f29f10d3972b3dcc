package local

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

// TestSentimentDataThenTrain runs the repository's real data and train
// notebooks on the bundled sample (data/sample/financial_news.csv) through
// the executor, then checks the registered model version exists.
// $PIPECTL_TEST_PROJECT runs another checkout's notebooks.
func TestSentimentDataThenTrain(t *testing.T) {
	f := getFixture(t)
	root := repoRoot(t)
	if d := os.Getenv("PIPECTL_TEST_PROJECT"); d != "" {
		root = d
	}
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

	train := base
	train.Stage, train.Type, train.Notebook = "train_nb", "train", "notebooks/train_model.py"
	model := "it_sentiment_" + id
	train.Params = map[string]string{"data_name": res.Outputs["data_name"], "data_version": res.Outputs["data_version"],
		"model_name": model, "model_type": "naive_bayes", "model_params": `{"alpha": 0.5}`, "seed": "42"}
	rec = events{}
	start = time.Now()
	res = run(t, ctx, e, train, &rec)
	t.Logf("train stage: %s", time.Since(start).Round(time.Millisecond))
	e.mu.Lock()
	srv := e.servers[f.state]
	e.mu.Unlock()
	t.Logf("MLflow server start-up (from the data stage's start): %s", srv.readyAt.Sub(srv.startedAt).Round(time.Millisecond))
	if res.Status != executor.Succeeded {
		t.Fatalf("train: %s %+v\n%s", res.Status, res.Error, rec.text())
	}
	if res.Outputs["model_name"] != model || res.Outputs["model_uri"] != "models:/"+model+"/"+res.Outputs["model_version"] {
		t.Errorf("train outputs %v", res.Outputs)
	}
	if res.Metrics["accuracy"] <= 0 {
		t.Errorf("train metrics %v, want accuracy", res.Metrics)
	}
	got, err := e.CheckOutputs(ctx, executor.CheckRequest{Task: train, Outputs: res.Outputs})
	if err != nil || !got.Exists {
		t.Errorf("CheckOutputs(train) = %+v, %v: the registered version should exist", got, err)
	}
	var links []string
	for _, l := range res.Links {
		links = append(links, l.URL)
	}
	if len(links) != 2 || !strings.Contains(links[0], "/runs/"+res.Outputs["run_id"]) {
		t.Errorf("links %v, want the MLflow run and the model version", links)
	}
	// Nothing landed in the project directory: artifacts went to the store.
	if _, err := os.Stat(filepath.Join(root, "mlruns")); err == nil {
		t.Errorf("%s/mlruns exists: artifacts were written outside the store", root)
	}
}
