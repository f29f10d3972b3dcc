package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/files"

	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// sentimentEmulator copies the project's specs, notebooks and data into a
// temporary project, starts an emulator with opts and uploads the raw CSV
// to the dev target's Volume.
func sentimentEmulator(t *testing.T, opts emulator.Options) (string, *emulator.Emulator) {
	t.Helper()
	python := mlPython(t)
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	project := filepath.Join(t.TempDir(), "project")
	for _, dir := range []string{"specs", "notebooks", "data"} {
		if err := os.CopyFS(filepath.Join(project, dir), os.DirFS(filepath.Join(repo, dir))); err != nil {
			t.Fatal(err)
		}
	}
	opts.Dir, opts.Token, opts.Python = t.TempDir(), emulatorToken, python
	e, err := emulator.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	t.Setenv("DATABRICKS_HOST", e.URL)
	t.Setenv("DATABRICKS_TOKEN", emulatorToken)
	env := map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": emulatorToken}
	c, err := databricks.NewClient(&databricks.Config{}, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.Open(filepath.Join(project, "data", "sample", "financial_news.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer sample.Close()
	err = c.W.Files.Upload(context.Background(), files.UploadRequest{FilePath: "/Volumes/dev/sentiment/pipectl/raw/financial_news.csv", Contents: sample})
	if err != nil {
		t.Fatal(err)
	}
	return project, e
}

const (
	submitCall = "POST /api/2.2/jobs/runs/submit"
	repairCall = "POST /api/2.2/jobs/runs/repair"
)

var sentimentStages = []string{"data", "train_lr", "train_nb", "train_svc", "evaluate", "inference"}

// TestSentimentOneRunOnEmulator: a pipeline run on Databricks is ONE
// Databricks run with a task per uncached stage; a stage that fails in it
// is repaired on --resume (only that task and its dependants run again, in
// the same Databricks run); Ctrl-C cancels the whole run.
func TestSentimentOneRunOnEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks")
	}
	project, e := sentimentEmulator(t, emulator.Options{})
	store := &record.Store{Dir: filepath.Join(project, ".pipectl", "runs")}

	// Six uncached stages: one submit with six tasks.
	r := runPipectl(t, project, "run", "sentiment", "--target", "dev", "--json")
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := e.Calls()[submitCall]; n != 1 {
		t.Errorf("%d runs/submit calls for 6 uncached stages, want 1", n)
	}
	ids := e.RunIDs()
	if len(ids) != 1 || len(e.TaskRunIDs(ids[0])) != 6 {
		t.Fatalf("Databricks runs %v with tasks %v, want one run of 6 tasks", ids, e.TaskRunIDs(ids[0]))
	}
	rec := lastRun(t, store)
	for _, s := range sentimentStages {
		st := rec.Stages[s]
		if st.Status != record.Succeeded || len(st.Attempts) != 1 || st.Attempts[0].Unit != "databricks run "+strconv.FormatInt(ids[0], 10) || st.Cache == nil || st.Cache.Key == "" {
			t.Errorf("%s: %s, attempts %+v, cache %+v", s, st.Status, st.Attempts, st.Cache)
		}
	}

	// A failure inside the run: train_nb fails, evaluate and inference
	// are skipped, the other trainings succeed.
	e.ResetCalls()
	e.InjectTask(emulator.TaskFault{TaskKey: "train_nb", Kind: emulator.FailTask, Error: "MemoryError: injected", Times: 1})
	r = runPipectl(t, project, "run", "sentiment", "--target", "dev", "--no-cache", "--json")
	if r.code != 1 {
		t.Fatalf("failing run: exit %d\n%s", r.code, r.stderr)
	}
	rec = lastRun(t, store)
	want := map[string]record.Status{"data": record.Succeeded, "train_lr": record.Succeeded, "train_svc": record.Succeeded,
		"train_nb": record.Failed, "evaluate": record.Skipped, "inference": record.Skipped}
	for s, st := range want {
		if got := rec.Stages[s].Status; got != st {
			t.Errorf("failing run: %s is %s, want %s", s, got, st)
		}
	}
	failedRun := e.RunIDs()[len(e.RunIDs())-1]
	before := e.TaskRunIDs(failedRun)

	// --resume repairs that run: no new submit, one repair, new task runs
	// for train_nb and its dependants only.
	e.ResetCalls()
	r = runPipectl(t, project, "run", "sentiment", "--target", "dev", "--resume", rec.ID, "--json")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	calls := e.Calls()
	if calls[submitCall] != 0 || calls[repairCall] != 1 {
		t.Errorf("resume made %d submits and %d repairs, want 0 and 1", calls[submitCall], calls[repairCall])
	}
	after := e.TaskRunIDs(failedRun)
	var rerun []int
	for i := range before {
		if before[i] != after[i] {
			rerun = append(rerun, i)
		}
	}
	// Task order is the plan's: data, train_lr, train_nb, train_svc, evaluate, inference.
	if !slices.Equal(rerun, []int{2, 4, 5}) {
		t.Errorf("the repair re-ran tasks %v of %v, want train_nb, evaluate, inference (2, 4, 5)", rerun, before)
	}
	rec = showRun(t, project, rec.ID)
	for _, s := range sentimentStages {
		if rec.Stages[s].Status != record.Succeeded {
			t.Errorf("resumed run: %s is %s", s, rec.Stages[s].Status)
		}
	}
	if n := len(rec.Stages["train_lr"].Attempts); n != 1 {
		t.Errorf("train_lr ran %d times, want once", n)
	}

	// Ctrl-C cancels the whole Databricks run.
	cmd, out := startPipectl(t, project, "run", "sentiment", "--target", "dev", "--no-cache")
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
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("interrupted run: %v\n%s", err, out.String())
	}
	if active := e.ActiveRuns(); len(active) != 0 {
		t.Fatalf("pipectl exited while Databricks runs %v were still active", active)
	}
	if rec := showRun(t, project, id); rec.Status != record.Cancelled {
		t.Errorf("run %s is %s, want cancelled", id, rec.Status)
	}
}

func lastRun(t *testing.T, store *record.Store) *record.Run {
	t.Helper()
	ids, err := store.IDs()
	if err != nil || len(ids) == 0 {
		t.Fatalf("no run records: %v", err)
	}
	slices.Sort(ids)
	rec, err := store.Load(ids[len(ids)-1])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
