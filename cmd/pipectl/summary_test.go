package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
	runner "github.com/pipectl/pipectl/engine/run"
)

// sentimentRecord is a run of the sentiment pipeline as the local executor
// would record it: real-looking outputs, metrics and links, which the noop
// executor of the script goldens cannot produce.
func sentimentRecord(failed bool) (*record.Run, *dag.Graph) {
	return sentimentRecordOf(failed, false)
}

// sentimentRecordOf is sentimentRecord; with tie, two candidates score the
// same and the evaluate stage says how it chose.
func sentimentRecordOf(failed, tie bool) (*record.Run, *dag.Graph) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	stage := func(typ string, start, end int, outputs map[string]string, metrics map[string]float64, links ...executor.Link) *record.Stage {
		return &record.Stage{Type: typ, Executor: "local", Status: record.Succeeded, StartedAt: at(start), EndedAt: at(end),
			DurationMS: int64(end-start) * 1000, Attempts: []record.Attempt{{N: 1, Status: record.Succeeded}},
			Outputs: outputs, Metrics: metrics, Links: links}
	}
	train := func(name, typ, version string, f1, acc float64) *record.Stage {
		return stage("train", 12, 95, map[string]string{"model_name": "sentiment_classifier", "model_version": version,
			"model_uri": "models:/sentiment_classifier/" + version, "model_type": typ, "run_id": "r" + version},
			map[string]float64{"accuracy": acc, "f1_macro": f1, "roc_auc_ovr": 0.91},
			executor.Link{Label: "MLflow run", URL: "http://127.0.0.1:5000/#/experiments/1/runs/r" + version})
	}
	rec := &record.Run{ID: "20260102-030405-000-1a2b", Pipeline: "sentiment", Target: "local", Executor: "local",
		SpecHash: "5f1d3c0ffee0123456789", GitCommit: "0123456789abcdef0123", PipectlVersion: "v0.1.0",
		Status: record.Succeeded, StartedAt: t0, EndedAt: at(131), DurationMS: 131000,
		Order: []string{"data", "train_lr", "train_nb", "train_svc", "evaluate", "inference"},
		Stages: map[string]*record.Stage{
			"data": stage("data", 0, 12, map[string]string{"data_name": "financial_news", "data_version": "v1", "data_path": "/p/.pipectl/data/financial_news/v1"},
				map[string]float64{"rows_clean": 5322}),
			"train_lr":  train("train_lr", "logistic_regression", "7", 0.7712, 0.8034),
			"train_nb":  train("train_nb", "naive_bayes", "8", 0.6931, 0.7456),
			"train_svc": train("train_svc", "linear_svc", "9", 0.7803, 0.8101),
			"evaluate": stage("evaluate", 95, 110, map[string]string{"decision": "promoted", "model_name": "sentiment_classifier",
				"model_version": "9", "model_uri": "models:/sentiment_classifier/9", "candidate_uri": "models:/sentiment_classifier/9"},
				map[string]float64{"candidate_score": 0.7803, "champion_score": 0.7712, "delta": 0.0091}),
			"inference": stage("inference", 110, 131, map[string]string{"predictions_path": "/p/.pipectl/predictions/sentiment/20260102-030405-000-1a2b/predictions.parquet",
				"rows": "533", "model_uri": "models:/sentiment_classifier@champion"}, map[string]float64{"accuracy": 0.8124, "f1_macro": 0.7933, "rows": 533}),
		}}
	if tie {
		rec.Stages["train_lr"].Metrics["f1_macro"] = 0.7803
		ev := rec.Stages["evaluate"]
		ev.Outputs["model_version"], ev.Outputs["model_uri"] = "7", "models:/sentiment_classifier/7"
		ev.Outputs["candidate_uri"] = "models:/sentiment_classifier/7"
		ev.Outputs["tie"] = "tie on f1_macro 0.7803 between versions 7, 9: candidate chosen by the first-listed rule (version 7)"
	}
	rec.Stages["train_nb"].Status = record.Cached
	rec.Stages["train_nb"].Cache = &record.CacheInfo{Status: "hit", FromRun: "20260101-000000-000-0001"}
	rec.Stages["train_nb"].Attempts = nil
	if failed {
		rec.Status = record.Failed
		ev := rec.Stages["evaluate"]
		ev.Status, ev.Outputs, ev.Metrics = record.Failed, nil, nil
		ev.Attempts = []record.Attempt{{N: 1, Status: record.Failed}, {N: 2, Status: record.Failed}}
		ev.Error = &executor.Failure{Message: "cell 4 of 9 failed: KeyError: 'f1_macro'", Detail: "Traceback (most recent call last):\n  ...\nKeyError: 'f1_macro'"}
		inf := rec.Stages["inference"]
		*inf = record.Stage{Type: "inference", Status: record.Skipped, Reason: "upstream evaluate failed"}
		rec.Error = &record.RunError{Stage: "evaluate", Message: ev.Error.Message, Detail: ev.Error.Detail}
	}
	g := dag.New(rec.Order...)
	for _, t := range []string{"train_lr", "train_nb", "train_svc"} {
		g.AddEdge("data", t)
		g.AddEdge(t, "evaluate")
	}
	g.AddEdge("evaluate", "inference")
	return rec, g
}

// golden compares got with testdata/<name>, rewriting it under
// PIPECTL_UPDATE=1.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("PIPECTL_UPDATE") == "1" {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (PIPECTL_UPDATE=1 creates it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

func TestSummaryOfASentimentRun(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		failed, userError, tie bool
	}{{"succeeded", false, false, false}, {"failed", true, false, false}, {"user_error", true, true, false}, {"tie", false, false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			rec, g := sentimentRecordOf(tc.failed, tc.tie)
			if tc.userError {
				// The evaluate stage's input is at fault: its message once,
				// no traceback, no --resume.
				ev := rec.Stages["evaluate"]
				ev.Error = &executor.Failure{Message: "data/x.csv: data row 3, column 'label': fix it", Detail: "Traceback ...", UserError: true}
				rec.Error = &record.RunError{Stage: "evaluate", Message: ev.Error.Message, Detail: ev.Error.Detail, UserError: true}
			}
			s := summarize(rec)
			var text, md bytes.Buffer
			s.writeText(&text)
			s.writeMarkdown(&md, g)
			golden(t, "summary/"+tc.name+".txt", text.String())
			golden(t, "summary/"+tc.name+".md", md.String())
		})
	}
}

func TestGitHubOutputs(t *testing.T) {
	rec, g := sentimentRecord(false)
	dir := t.TempDir()
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary.md")}
	var stderr bytes.Buffer
	app := &App{Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	pl := testPlanWithGraph(g)
	app.writeGitHub(rec, pl)
	app.writeGitHub(rec, pl) // appends, as GitHub expects of both files
	out, _ := os.ReadFile(env["GITHUB_OUTPUT"])
	want := "run_id=20260102-030405-000-1a2b\nstatus=succeeded\nmodel_name=sentiment_classifier\nmodel_version=9\nmodel_uri=models:/sentiment_classifier/9\ndecision=promoted\npredictions_path=/p/.pipectl/predictions/sentiment/20260102-030405-000-1a2b/predictions.parquet\n"
	if diff := cmp.Diff(want+want, string(out)); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	md, _ := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
	if strings.Count(string(md), "## ✅ pipectl: `sentiment` on `local` succeeded") != 2 {
		t.Errorf("summary not appended twice:\n%s", md)
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	if got := ghOutputLine("k", "a\nb"); !strings.HasPrefix(got, "k<<ghadelimiter_") || !strings.Contains(got, "\na\nb\nghadelimiter_") {
		t.Errorf("multi-line output %q", got)
	}
	if got := ghError("Stage a,b: failed", "50% done\nthen failed"); got != "::error title=Stage a%2Cb%3A failed::50%25 done%0Athen failed" {
		t.Errorf("ghError %q", got)
	}
}

func TestTTYFrame(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := &ttyOutput{w: &bytes.Buffer{}, now: func() time.Time { return now }, order: []string{"data", "train_lr", "train_nb", "evaluate", "inference"},
		stages: map[string]*ttyStage{}}
	for _, n := range o.order {
		o.stages[n] = &ttyStage{status: record.Pending}
	}
	d := func(ms int64) *int64 { return &ms }
	for _, ev := range []runner.Event{
		{Type: runner.RunStarted, RunID: "20260102-030405-000-1a2b", Pipeline: "sentiment", Target: "local", Time: now.Add(-75 * time.Second)},
		{Type: runner.StageFinished, Stage: "data", Status: record.Cached, Reason: "outputs of run 20260101-000000-000-0001", DurationMS: d(0)},
		{Type: runner.StageStarted, Stage: "train_lr", Attempt: 1, Time: now.Add(-61 * time.Second)},
		{Type: runner.Log, Stage: "train_lr", Text: "fitting TfidfVectorizer\nfitting LogisticRegression(C=8)"},
		{Type: runner.StageStarted, Stage: "train_nb", Attempt: 1, Time: now.Add(-70 * time.Second)},
		{Type: runner.StageRetrying, Stage: "train_nb", Attempt: 1, DelayMS: d(10000), Error: &executor.Failure{Message: "MLflow server unavailable"}},
		{Type: runner.StageStarted, Stage: "train_nb", Attempt: 2, Time: now.Add(-5 * time.Second)},
		{Type: runner.StageFinished, Stage: "evaluate", Status: record.Skipped, Reason: "upstream train_svc failed", DurationMS: d(0)},
	} {
		o.Event(ev)
	}
	got := strings.Join(o.frame(now, 72), "\n") + "\n"
	golden(t, "tty/frame.txt", got)

	var b bytes.Buffer
	o.w = &b
	o.draw()
	if !strings.HasPrefix(b.String(), "\x1b[6A\r\x1b[2K") {
		t.Errorf("a redraw does not move up over the previous frame: %q", b.String()[:20])
	}
}
