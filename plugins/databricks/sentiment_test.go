package databricks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/files"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/spec"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// sentimentProject assembles a project from the repository's specs and the
// real notebooks.
func sentimentProject(t *testing.T) string {
	t.Helper()
	project := filepath.Join(t.TempDir(), "project")
	for _, dir := range []struct{ from, to string }{
		{filepath.Join(dbtest.RepoRoot(t), "specs"), "specs"},
		{dbtest.Notebooks(t), "notebooks"},
	} {
		if err := os.CopyFS(filepath.Join(project, dir.to), os.DirFS(dir.from)); err != nil {
			t.Fatal(err)
		}
	}
	for _, nb := range []string{"create_data.py", "train_model.py", "evaluate_models.py", "run_inference.py"} {
		if _, err := os.Stat(filepath.Join(project, "notebooks", nb)); err != nil {
			t.Skipf("the sentiment notebooks are not there (%v); set PIPECTL_TEST_NOTEBOOKS", err)
		}
	}
	return project
}

// TestSentimentOnEmulator runs the whole sentiment pipeline on the dev
// target against the emulator, with the notebooks executed for real: data
// → train × 3 (in parallel) → evaluate → inference, outputs passed between
// stages. pipectl's runner is not driving it here: the test walks the
// plan's layers itself, substituting outputs as the runner does. Then it
// deploys the pipeline as a job and runs it with run-now, where the same
// wiring goes through task values.
func TestSentimentOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks (about a minute)")
	}
	sentimentOnEmulator(t, dbtest.MLPython(t), false)
}

// TestSentimentOnEmulatorSpark is the same run stage by stage with the
// data and inference stages on the spark engine (--set data.engine=spark
// --set inference.engine=spark), the emulator providing a local Spark as a
// cluster provides one (Options.SparkMaster): the split is the pandas one,
// the predictions a Delta table whose log CheckOutputs finds. The job run
// half is left to the pandas test (the wiring through task values does not
// depend on the engine). 1m39s on 2 cores at load average ~1, 5m39s at
// 8-10 (a JVM each for data and inference; the Delta jars cached already).
func TestSentimentOnEmulatorSpark(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks on local Spark (minutes)")
	}
	sentimentOnEmulator(t, dbtest.SparkPython(t), true)
}

func sentimentOnEmulator(t *testing.T, python string, spark bool) {
	project := sentimentProject(t)
	raw := dbtest.Data(t, "financial-sentiment/data.csv")
	opts := emulator.Options{Python: python, MLflowTrackingURI: dbtest.OwnMLflow,
		PythonPath: []string{dbtest.RunnerPath(t, filepath.Join(project, "notebooks"))}}
	var sets []plan.Set
	predictions := "predictions.parquet"
	if spark {
		opts.SparkMaster = "local[2]"
		if state := os.Getenv("PIPECTL_TEST_STATE"); state != "" {
			// The Delta jars' ivy cache, shared with make py-test-spark.
			opts.Env = []string{"PIPECTL_STATE_DIR=" + state}
		}
		sets = []plan.Set{{Stage: "data", Key: "engine", Raw: "spark"}, {Stage: "inference", Key: "engine", Raw: "spark"}}
		predictions = "predictions.delta"
	}
	e := dbtest.Emulator(t, opts)
	env := dbtest.Env(e)
	ctx := context.Background()

	c, err := databricks.NewClient(&databricks.Config{}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	err = c.W.Files.Upload(ctx, files.UploadRequest{FilePath: "/Volumes/dev/sentiment/pipectl/raw/financial_news.csv", Contents: f})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}

	proj, ds := spec.Load(nil, spec.Options{Root: project})
	if ds.HasErrors() {
		t.Fatalf("specs: %v", ds)
	}
	schema, err := spec.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	pl, ds := plan.Build(schema, proj.Pipelines["sentiment"], plan.Options{Target: "dev", Sets: sets})
	if ds.HasErrors() {
		t.Fatalf("plan: %v", ds)
	}

	x := databricks.New(env)
	runID := "20261127-000000-e2e1"
	outputs := map[string]map[string]string{}
	var mu sync.Mutex
	var written []string // everything the run would record, for the leak scan
	lookup := func(r spec.Ref) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Run {
		case "date":
			return "2026-11-27", true
		case "id":
			return runID, true
		}
		v, ok := outputs[r.Stage][r.Output]
		return v, ok
	}
	callsBefore := e.Calls()
	start := time.Now()
	for _, layer := range pl.Layers {
		var wg sync.WaitGroup
		for _, name := range layer {
			st := pl.Stages[name]
			params, err := st.RenderParams(lookup)
			if err != nil {
				t.Fatal(err)
			}
			task := executor.Task{RunID: runID, Pipeline: "sentiment", Target: "dev", Stage: name, Type: st.Type,
				Notebook: st.Notebook, ProjectRoot: project, Params: params, Attempt: 1, Timeout: 10 * time.Minute,
				Config: st.ExecutorConfig, GitCommit: "0123456789abcdef0123456789abcdef01234567"}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev := &events{}
				res, err := x.Run(ctx, task, ev.sink)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				b, _ := json.Marshal(struct {
					R executor.Result
					E []executor.Event
				}{res, ev.list()})
				mu.Lock()
				written = append(written, string(b))
				outputs[name] = res.Outputs
				mu.Unlock()
				if res.Status != executor.Succeeded {
					t.Errorf("%s: %s: %+v", name, res.Status, res.Error)
					return
				}
				chk, err := x.CheckOutputs(ctx, executor.CheckRequest{Task: task, Outputs: res.Outputs})
				if err != nil || !chk.Exists {
					t.Errorf("%s: outputs do not check out: %v %+v", name, err, chk)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	elapsed := time.Since(start)

	data, eval, inf := outputs["data"], outputs["evaluate"], outputs["inference"]
	if data["data_path"] != "/Volumes/dev/sentiment/pipectl/data/financial_news/v1" || data["rows_train"] == "" {
		t.Errorf("data outputs %v", data)
	}
	var uris []string
	for _, tr := range []string{"train_lr", "train_nb", "train_svc"} {
		if !strings.HasPrefix(outputs[tr]["model_uri"], "models:/dev.sentiment.sentiment_classifier/") {
			t.Errorf("%s model_uri %q", tr, outputs[tr]["model_uri"])
		}
		uris = append(uris, outputs[tr]["model_uri"])
	}
	if len(slices.Compact(slices.Sorted(slices.Values(uris)))) != 3 {
		t.Errorf("the three trainings registered %v; want three distinct versions", uris)
	}
	if eval["decision"] != "first" || !slices.Contains(uris, eval["model_uri"]) {
		t.Errorf("evaluate outputs %v (candidates %v)", eval, uris)
	}
	if inf["model_uri"] != eval["model_uri"] || inf["rows"] != data["rows_holdout"] ||
		inf["predictions_path"] != "/Volumes/dev/sentiment/pipectl/predictions/sentiment/"+runID+"/"+predictions {
		t.Errorf("inference outputs %v", inf)
	}
	if local, err := e.VolumePath(inf["predictions_path"]); err != nil {
		t.Error(err)
	} else if _, err := os.Stat(local); err != nil {
		t.Errorf("predictions file: %v", err)
	}
	report(t, "run stage by stage", elapsed, len(pl.Stages), callsBefore, e.Calls())
	if spark {
		sparkOutputsMatchPandas(t, e, data, inf)
		return
	}

	// The champion alias evaluate set resolves, through Unity Catalog, to
	// the version evaluate chose; the notebook would get that version.
	fp, err := x.Fingerprint(ctx, executor.FingerprintRequest{
		Task:   executor.Task{Stage: "inference", Type: "inference", ProjectRoot: project, Config: pl.Stages["inference"].ExecutorConfig},
		Inputs: []executor.Input{{Param: "model", Kind: executor.InputModel, Ref: "models:/sentiment_classifier@champion"}}})
	if err != nil || len(fp.Fingerprints) != 1 {
		t.Fatalf("fingerprint the champion: %v %+v", err, fp)
	}
	if got := "models:/dev.sentiment." + strings.TrimPrefix(fp.Fingerprints[0].Resolved, "models:/"); got != eval["model_uri"] || fp.Fingerprints[0].Value == "" {
		t.Errorf("champion resolved to %+v, evaluate chose %s", fp.Fingerprints[0], eval["model_uri"])
	}

	// Deploy the same pipeline and run it as a job.
	d := &databricks.Deployer{Env: env}
	for range 2 {
		if _, err := d.Deploy(ctx, pl, databricks.DeployOptions{ProjectRoot: project, GitCommit: "0123456789abcdef0123456789abcdef01234567"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.W.Jobs.ListAll(ctx, jobs.ListJobsRequest{})
	if err != nil || len(all) != 1 {
		t.Fatalf("jobs after two deploys: %v %d", err, len(all))
	}
	callsBefore, start = e.Calls(), time.Now()
	now, err := c.W.Jobs.RunNow(ctx, jobs.RunNow{JobId: all[0].JobId})
	if err != nil {
		t.Fatal(err)
	}
	run := waitTerminated(t, c, now.RunId)
	if run.State.ResultState != jobs.RunResultStateSuccess {
		for _, task := range run.Tasks {
			t.Logf("%s: %+v\n%s", task.TaskKey, task.State, e.TaskLog(task.RunId))
		}
		t.Fatalf("job run %+v", run.State)
	}
	for _, task := range run.Tasks {
		if task.TaskKey != "inference" {
			continue
		}
		out, err := c.W.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: task.RunId})
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Outputs map[string]any }
		if err := json.Unmarshal([]byte(out.NotebookOutput.Result), &ev); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("/Volumes/dev/sentiment/pipectl/predictions/sentiment/%d/predictions.parquet", run.RunId)
		if ev.Outputs["predictions_path"] != want {
			t.Errorf("job inference wrote %v, want %s ({{job.run_id}} as pipectl_run_id)", ev.Outputs["predictions_path"], want)
		}
	}
	report(t, "job run (run-now; the runs/get are this test's own polls, every 200 ms)", time.Since(start), len(run.Tasks), callsBefore, e.Calls())

	for _, w := range written {
		if strings.Contains(w, dbtest.Token) {
			t.Fatalf("the token leaked into a result or event: %s", w)
		}
	}
	for _, id := range e.RunIDs() {
		for _, tid := range e.TaskRunIDs(id) {
			if strings.Contains(e.TaskLog(tid), dbtest.Token) {
				t.Fatalf("the token reached the output of notebook task run %d", tid)
			}
		}
	}
}

// report logs the API calls a scenario made, by endpoint and per stage.
func report(t *testing.T, what string, elapsed time.Duration, stages int, before, after map[string]int) {
	t.Helper()
	var lines []string
	total := 0
	for _, ep := range slices.Sorted(maps.Keys(after)) {
		if n := after[ep] - before[ep]; n > 0 {
			total += n
			lines = append(lines, fmt.Sprintf("  %-45s %4d  (%.1f per stage)", ep, n, float64(n)/float64(stages)))
		}
	}
	t.Logf("%s: %d stages in %s, %d API calls:\n%s", what, stages, elapsed.Round(time.Second), total, strings.Join(lines, "\n"))
}

// pandasSplits are the splits the pandas engine makes of the shared
// financial-sentiment data with the sentiment pipeline's data parameters
// (seed 42): rows and content sha256 (id, text, label of every row) from its
// manifest. The spark engine must make the same ones.
var pandasSplits = map[string]struct {
	Rows   int
	SHA256 string
}{
	"train":   {3726, "21120518d4b42f22ff381ddd084861e9135842201ac8f139732df17f7ba1b435"},
	"test":    {1064, "8e0a49ed494138f4fdf63844ad698bb10ebc1e7f2a0f71a47002ef6b25d280b2"},
	"holdout": {532, "a94043ceda1b38e92ad49779739484cd2d94a34bba096fffd275e71b68424454"},
}

// sparkOutputsMatchPandas: the spark engine's data version and predictions
// on the emulator's Volume are what the pandas engine writes: Delta splits
// with the pandas engine's rows, row for row (pandasSplits), and a Delta
// table of predictions with its log.
func sparkOutputsMatchPandas(t *testing.T, e *emulator.Emulator, data, inf map[string]string) {
	t.Helper()
	dir, err := e.VolumePath(data["data_path"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Splits map[string]struct {
			Format string
			Rows   int
			SHA256 string
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"train", "test", "holdout"} {
		s, want := m.Splits[split], pandasSplits[split]
		if s.Format != "delta" || s.Rows != want.Rows || s.SHA256 != want.SHA256 || fmt.Sprint(s.Rows) != data["rows_"+split] {
			t.Errorf("split %s: %+v, want the pandas engine's %+v (outputs %v)", split, s, want, data)
		}
		if _, err := os.Stat(filepath.Join(dir, split, executor.DeltaLog)); err != nil {
			t.Errorf("split %s is no Delta table: %v", split, err)
		}
	}
	table, _ := e.VolumePath(inf["predictions_path"])
	if _, err := os.Stat(filepath.Join(table, executor.DeltaLog)); err != nil {
		t.Errorf("predictions are no Delta table: %v", err)
	}
}
