package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// mlPython returns a Python with the notebooks' requirements, skipping the
// test otherwise.
func mlPython(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PIPECTL_TEST_PYTHON")
	if p == "" {
		p = "python3"
	}
	if err := exec.Command(p, "-c", "import mlflow, sklearn, pandas, pyarrow").Run(); err != nil {
		t.Skipf("%s lacks notebooks/requirements.txt (mlflow, scikit-learn, pandas, pyarrow); set PIPECTL_TEST_PYTHON", p)
	}
	return p
}

// jsonEvent is the part of a --json event the test reads.
type jsonEvent struct {
	Type    string            `json:"type"`
	Stage   string            `json:"stage"`
	Status  string            `json:"status"`
	Outputs map[string]string `json:"outputs"`
	Link    *struct{ URL string }
	Error   *struct{ Message string }
}

func events(t *testing.T, stdout string) []jsonEvent {
	t.Helper()
	var out []jsonEvent
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("stdout line %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// TestSentimentRunOnEmulator runs `pipectl run sentiment --target dev` end
// to end against the Databricks emulator: the runner, the databricks
// built-in served over go-plugin, real notebooks on the repository's
// sample data. A second run is cached after the executor checked that the
// outputs still exist in the Volume and in Unity Catalog; Ctrl-C during a
// run cancels the remote runs; the token appears nowhere pipectl writes.
func TestSentimentRunOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks")
	}
	python := mlPython(t)
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	project := filepath.Join(t.TempDir(), "project")
	for _, dir := range []string{"specs", "notebooks", "data"} {
		if err := os.CopyFS(filepath.Join(project, dir), os.DirFS(filepath.Join(repo, dir))); err != nil {
			t.Fatal(err)
		}
	}
	e, err := emulator.Start(emulator.Options{Dir: t.TempDir(), Token: emulatorToken, Python: python, Catalogs: []string{"dev"},
		UserName: "jane.doe@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Setenv("DATABRICKS_HOST", e.URL)
	t.Setenv("DATABRICKS_TOKEN", emulatorToken)
	env := map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": emulatorToken}
	c, err := databricks.NewClient(&databricks.Config{}, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What a developer does first: the schema, the Volume and the raw data.
	if r := runPipectl(t, project, "setup", "sentiment", "-t", "dev", "--upload",
		filepath.Join(project, "data", "sample", "financial_news.csv")); r.code != 0 ||
		!strings.Contains(r.stdout, "file       /Volumes/dev/sentiment/pipectl/raw/financial_news.csv uploaded") {
		t.Fatalf("setup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var written []string // what pipectl printed, for the leak scan

	// A full run: every stage succeeds on the emulator.
	r := runPipectl(t, project, "run", "sentiment", "--target", "dev", "--json")
	written = append(written, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	finished, links := map[string]jsonEvent{}, 0
	for _, ev := range events(t, r.stdout) {
		switch ev.Type {
		case "stage_finished":
			finished[ev.Stage] = ev
		case "link":
			if ev.Link != nil && strings.HasPrefix(ev.Link.URL, e.URL+"/?o=") {
				links++
			}
		}
	}
	for _, s := range []string{"data", "train_lr", "train_nb", "train_svc", "evaluate", "inference"} {
		if finished[s].Status != "succeeded" {
			t.Errorf("%s: %+v", s, finished[s])
		}
	}
	if links != 6 {
		t.Errorf("%d Databricks run page links, want one per stage", links)
	}
	if got := finished["inference"].Outputs["model_uri"]; got != finished["evaluate"].Outputs["model_uri"] || !strings.HasPrefix(got, "models:/dev.sentiment.sentiment_classifier/") {
		t.Errorf("inference used %q, evaluate chose %q", got, finished["evaluate"].Outputs["model_uri"])
	}
	runs := len(e.RunIDs())
	// dev is per-user: jane's runs carry her name.
	for _, id := range e.RunIDs() {
		run, err := c.W.Jobs.GetRun(context.Background(), jobs.GetRunRequest{RunId: id})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(run.RunName, "[dev jane_doe] ") {
			t.Errorf("run %d is named %q, want the prefix [dev jane_doe]", id, run.RunName)
		}
	}

	// The same run again is cached: the executor found every output.
	r = runPipectl(t, project, "run", "sentiment", "--target", "dev", "--json")
	written = append(written, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r.code, r.stderr)
	}
	for _, ev := range events(t, r.stdout) {
		if ev.Type == "stage_finished" && ev.Status != "cached" {
			t.Errorf("second run: %s %s", ev.Stage, ev.Status)
		}
	}
	if n := len(e.RunIDs()); n != runs {
		t.Errorf("the cached run submitted %d Databricks runs", n-runs)
	}

	// Ctrl-C while the trainings run on Databricks: the remote runs are
	// cancelled before pipectl exits.
	cmd, out := startPipectl(t, project, "run", "sentiment", "--target", "dev", "--no-cache")
	store := &record.Store{Dir: filepath.Join(project, ".pipectl", "runs")}
	var id string
	waitFor(t, "a training to run on Databricks", func() bool {
		ids, _ := store.IDs()
		for _, i := range ids {
			if rec, err := store.Load(i); err == nil && rec.Owner.PID == cmd.Process.Pid && rec.Stages["train_lr"].Status == record.Running {
				id = i
				return len(e.ActiveRuns()) > 0
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	written = append(written, out.String())
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("interrupted run: %v\n%s", err, out.String())
	}
	if active := e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("pipectl exited while Databricks runs %v were still active", active)
	}
	rec := showRun(t, project, id)
	if rec.Status != record.Cancelled {
		t.Errorf("run %s is %s, want cancelled", id, rec.Status)
	}

	// The token is nowhere: not in what pipectl printed, not in run
	// records or logs, not in what the notebooks printed.
	err = filepath.WalkDir(filepath.Join(project, ".pipectl"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, string(filepath.Separator)+"venv") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(emulatorToken)) {
			t.Errorf("the token is in %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range written {
		if strings.Contains(w, emulatorToken) {
			t.Errorf("the token is in pipectl's output: %s", w)
		}
	}
	logs := 0
	for _, rid := range e.RunIDs() {
		for _, tid := range e.TaskRunIDs(rid) {
			log := e.TaskLog(tid)
			logs += len(log)
			if strings.Contains(log, emulatorToken) {
				t.Errorf("the token reached the output of notebook task run %d", tid)
			}
		}
	}
	if logs == 0 {
		t.Error("no notebook output was scanned")
	}
}
