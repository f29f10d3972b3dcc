package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/engine/executor"
)

// A stage with engine "spark" runs in the venv of requirements-spark.txt
// (pyspark, delta-spark); every other stage in the pandas one. The state
// directory reaches the stage for the Spark session's ivy cache.
func TestSparkEngineStageUsesTheSparkVenv(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"notebooks/pipectl_runner/__main__.py", "notebooks/requirements.txt", "notebooks/requirements-spark.txt", "nb.py"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for engine, want := range map[string]string{"spark": "requirements-spark.txt", "pandas": "requirements.txt", "": "requirements.txt"} {
		task := executor.Task{ProjectRoot: root, Notebook: "nb.py", Params: map[string]string{}}
		if engine != "" {
			task.Params["engine"] = engine
		}
		l, err := newLayout(task)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(l.requirements) != want {
			t.Errorf("engine %q: venv from %s, want %s", engine, l.requirements, want)
		}
		env := strings.Join(stageEnv([]string{"PIPECTL_STATE_DIR=/elsewhere"}, l, ""), "\n")
		if !strings.Contains(env, "PIPECTL_STATE_DIR="+l.state) || strings.Contains(env, "/elsewhere") {
			t.Errorf("engine %q: the stage's environment lacks PIPECTL_STATE_DIR=%s:\n%s", engine, l.state, env)
		}
	}
}

// Without requirements-spark.txt (a project from before the engine), a
// spark stage fails naming the file and the way out.
func TestSparkEngineWithoutItsRequirements(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"notebooks/pipectl_runner/__main__.py", "notebooks/requirements.txt", "nb.py"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := newLayout(executor.Task{ProjectRoot: root, Notebook: "nb.py", Params: map[string]string{"engine": "spark"}})
	if err == nil || !strings.Contains(err.Error(), "requirements-spark.txt not found") || !strings.Contains(err.Error(), "engine: pandas") {
		t.Fatalf("err = %v, want one naming requirements-spark.txt and engine: pandas", err)
	}
}
