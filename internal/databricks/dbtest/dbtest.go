package dbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pipectl/pipectl/internal/databricks/emulator"
)

// Token is the bearer token of test emulators. It looks like a real PAT so
// that leak scans mean something.
const Token = "dapi0123456789abcdef0123456789abcdef-emulator"

// RepoRoot returns the repository root (the directory of go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above " + file)
		}
		dir = parent
	}
}

// Project returns the small test project: notebooks/echo.py, fail.py,
// sleep.py, write.py and the helper package they import.
func Project(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "project")
}

// Python returns the interpreter for notebooks, skipping the test when
// there is none.
func Python(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PIPECTL_TEST_PYTHON"); p != "" {
		return p
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH to run notebooks; set PIPECTL_TEST_PYTHON")
	}
	return p
}

// MLPython returns an interpreter that has the notebooks' requirements
// (mlflow, scikit-learn, pandas, pyarrow), skipping the test otherwise.
func MLPython(t testing.TB) string {
	t.Helper()
	p := Python(t)
	if err := exec.Command(p, "-c", "import mlflow, sklearn, pandas, pyarrow").Run(); err != nil {
		missing(t, "%s lacks the notebooks' requirements (mlflow, scikit-learn, pandas, pyarrow); set PIPECTL_TEST_PYTHON to a venv built from notebooks/requirements.txt", p)
	}
	return p
}

// SparkPython returns an interpreter of the Spark engine's venv
// (notebooks/requirements-spark.txt: the notebooks' requirements plus
// pyspark and delta-spark): $PIPECTL_TEST_SPARK_PYTHON, else the one `make
// python-spark` recorded in $PIPECTL_TEST_STATE/spark-python. It skips the
// test when there is none.
func SparkPython(t testing.TB) string {
	t.Helper()
	p := os.Getenv("PIPECTL_TEST_SPARK_PYTHON")
	if state := os.Getenv("PIPECTL_TEST_STATE"); p == "" && state != "" {
		if b, err := os.ReadFile(filepath.Join(state, "spark-python")); err == nil {
			p = strings.TrimSpace(string(b))
		}
	}
	if p == "" {
		missing(t, "no Spark venv: set PIPECTL_TEST_SPARK_PYTHON, or run make python-spark (it records one in $PIPECTL_TEST_STATE/spark-python)")
	}
	if err := exec.Command(p, "-c", "import pyspark, delta, mlflow, sklearn").Run(); err != nil {
		missing(t, "%s lacks pyspark, delta-spark or the notebooks' requirements; build it from notebooks/requirements-spark.txt", p)
	}
	if _, err := exec.LookPath("java"); err != nil {
		missing(t, "no java on PATH for a local Spark session")
	}
	return p
}

// Notebooks returns a notebooks/ directory holding pipectl_runner,
// skipping the test when there is none.
func Notebooks(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PIPECTL_TEST_NOTEBOOKS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "notebooks")
	}
	if _, err := os.Stat(filepath.Join(dir, "pipectl_runner", "__main__.py")); err != nil {
		t.Skipf("no notebook runner at %s/pipectl_runner; set PIPECTL_TEST_NOTEBOOKS to a notebooks/ directory", dir)
	}
	return dir
}

// RunnerPath returns a directory holding only pipectl_runner (a link to
// notebooks/pipectl_runner): the emulator's PYTHONPATH then gives notebooks
// the runner without the project's packages, which a task must install
// (the project's wheel) as on Databricks.
func RunnerPath(t testing.TB, notebooks string) string {
	t.Helper()
	dir := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(notebooks, "pipectl_runner"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "pipectl_runner")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Data returns a file of the shared data directory, skipping the test when
// it is not there.
func Data(t testing.TB, rel string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("PIPECTL_TEST_DATA"); d != "" {
		dirs = append(dirs, d)
	}
	for dir := RepoRoot(t); ; {
		dirs = append(dirs, filepath.Join(dir, "shared", "data"))
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("shared data %s not found; set PIPECTL_TEST_DATA", rel)
	return ""
}

// OwnMLflow as emulator.Options.MLflowTrackingURI lets the emulator start
// its own MLflow server (needs MLPython). By default test emulators point
// the databricks URIs at a SQLite store instead, which notebooks that never
// touch MLflow do not mind.
const OwnMLflow = "own"

// NoPython as emulator.Options.Python starts an emulator that cannot run
// notebooks, for tests of the API alone.
const NoPython = "-"

// Emulator starts an emulator for the test and closes it at the end. The
// runner comes from Notebooks and Python from Python, unless opts.Python
// is set (NoPython: none).
func Emulator(t testing.TB, opts emulator.Options) *emulator.Emulator {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Token == "" {
		opts.Token = Token
	}
	switch opts.MLflowTrackingURI {
	case OwnMLflow:
		opts.MLflowTrackingURI = ""
	case "":
		opts.MLflowTrackingURI = "sqlite:///" + filepath.ToSlash(filepath.Join(opts.Dir, "mlflow.db"))
	}
	switch opts.Python {
	case NoPython:
		opts.Python = ""
	case "":
		opts.Python = Python(t)
		if len(opts.PythonPath) == 0 {
			opts.PythonPath = []string{RunnerPath(t, Notebooks(t))}
		}
	}
	e, err := emulator.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	return e
}

// Env returns an environment for a client of e: DATABRICKS_HOST and
// DATABRICKS_TOKEN, plus extra KEY=VALUE pairs; nothing else leaks in.
func Env(e *emulator.Emulator, extra ...string) func(string) string {
	m := map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": Token, "HOME": "/nonexistent"}
	for _, kv := range extra {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				m[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return func(k string) string { return m[k] }
}

// missing skips a test whose interpreter or tool is not here, except in CI
// (CI=true), where `make test` installs them: there a skip would hide a
// missing install step, so it fails.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but "+format, args...)
	}
	t.Skipf(format, args...)
}
