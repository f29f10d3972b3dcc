package main

import (
	"context"

	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/plugins/local"
)

// TestSentimentLocalEndToEnd is the quick start, checked: `pipectl run
// sentiment` on the bundled sample with the local executor (self-exec'd
// over go-plugin, a real venv, a real MLflow server and registry), then the
// same command again, fully cached. Then the registry must hold the
// champion that evaluate chose, and the predictions file one row per
// holdout row.
func TestSentimentLocalEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks (skipped with -short)")
	}
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	project := filepath.Join(t.TempDir(), "project")
	for _, dir := range []string{"specs", "notebooks", "data"} {
		if err := os.CopyFS(filepath.Join(project, dir), os.DirFS(filepath.Join(repo, dir))); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(t.TempDir(), "state")
	python := sharedVenv(t, project, state)

	first := runPipectl(t, project, "--state-dir", state, "run", "sentiment", "--json")
	if first.code != 0 {
		t.Fatalf("first run exited %d\nstderr:\n%s", first.code, tail(first.stderr, 60))
	}
	for stage, status := range finished(t, first.stdout) {
		if status != "succeeded" {
			t.Errorf("first run: stage %s %s", stage, status)
		}
	}

	second := runPipectl(t, project, "--state-dir", state, "run", "sentiment", "--json")
	if second.code != 0 {
		t.Fatalf("second run exited %d\nstderr:\n%s", second.code, tail(second.stderr, 40))
	}
	got := finished(t, second.stdout)
	if len(got) != 6 {
		t.Errorf("second run finished %d stages, want 6: %v", len(got), got)
	}
	for stage, status := range got {
		if status != "cached" {
			t.Errorf("second run: stage %s %s, want cached", stage, status)
		}
	}

	// What the first run produced, from its record.
	runs, errs := (&record.Store{Dir: filepath.Join(state, "runs")}).List()
	if len(errs) > 0 || len(runs) != 2 {
		t.Fatalf("want 2 run records, got %d (errors %v)", len(runs), errs)
	}
	rec := runs[len(runs)-1]
	for _, r := range runs {
		if r.ID < rec.ID {
			rec = r
		}
	}
	out := func(stage, key string) string {
		st := rec.Stages[stage]
		if st == nil || st.Outputs[key] == "" {
			t.Fatalf("run %s: stage %s has no output %s", rec.ID, stage, key)
		}
		return st.Outputs[key]
	}

	// The champion alias points at the version evaluate chose.
	store := local.NewStore(state)
	script := `import sys
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
print(c.get_model_version_by_alias(sys.argv[2], "champion").version)`
	champion := pythonOut(t, python, script, store.URI(), out("evaluate", "model_name"))
	if want := out("evaluate", "model_version"); champion != want {
		t.Errorf("champion alias is version %s, evaluate chose %s", champion, want)
	}

	// One prediction per holdout row, in the file inference reported.
	rows := pythonOut(t, python, `import sys, pyarrow.parquet as pq; print(pq.read_metadata(sys.argv[1]).num_rows)`,
		out("inference", "predictions_path"))
	if holdout := out("data", "rows_holdout"); rows != holdout || rows == "0" {
		t.Errorf("predictions have %s rows, the holdout split %s", rows, holdout)
	}
}

// sharedVenv makes the test's state directory use the venv shared by the
// tests (PIPECTL_TEST_STATE, as plugins/local's tests), so that it is built
// once per machine, not per test run: the venv is linked into state under
// the name the local executor looks for. It returns the venv's python.
func sharedVenv(t *testing.T, project, state string) string {
	t.Helper()
	env, err := local.EnsureVenv(context.Background(), local.VenvOptions{
		ProjectRoot: project, StateDir: sharedTestState(t), Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(),
	})
	if err != nil {
		t.Fatalf("test venv: %v", err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(env.Dir, filepath.Join(state, filepath.Base(env.Dir))); err != nil {
		t.Fatal(err)
	}
	return env.Python
}

// finished maps each stage to the status of its stage_finished event.
func finished(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ev := range events(t, stdout) {
		if ev.Type == "stage_finished" {
			out[ev.Stage] = ev.Status
		}
	}
	return out
}

func pythonOut(t *testing.T, python, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true")
	b, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python %s: %v\n%s", strconv.Quote(script), err, stderr)
	}
	return strings.TrimSpace(string(b))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sharedTestState is the state directory whose venv and MLflow store the
// tests share with plugins/local's: $PIPECTL_TEST_STATE, or
// <user cache>/pipectl/test-state, kept between test runs.
func sharedTestState(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PIPECTL_TEST_STATE"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no cache directory for the shared test venv (set PIPECTL_TEST_STATE): %v", err)
	}
	return filepath.Join(cache, "pipectl", "test-state")
}
