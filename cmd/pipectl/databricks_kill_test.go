package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/record"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// groupKillPoint is a moment at which TestKill9GroupedRunResumes kills
// pipectl during a grouped run of the sentiment pipeline on the emulator.
type groupKillPoint struct {
	name string
	// submitLost: the runs/submit is served (the run starts) and its
	// answer never reaches pipectl, which is killed meanwhile.
	submitLost bool
	// task: kill once this task of the Databricks run is RUNNING.
	task string
	// unseen: freeze pipectl when task runs, kill it once these tasks
	// have ended in Databricks (all of them: the run has ended), so that
	// pipectl never learns how they ended.
	unseen []string
}

// groupKillPoints in iteration order: the default two iterations
// (killLoopIterations) cover the two points that found bugs.
var groupKillPoints = []groupKillPoint{
	{name: "submitted", submitLost: true},
	{name: "finished-unseen", task: "inference", unseen: sentimentStages},
	{name: "training", task: "train_nb"},
	{name: "trained-unseen", task: "train_nb", unseen: []string{"train_lr", "train_nb", "train_svc"}},
	{name: "evaluating", task: "evaluate"},
	{name: "inferring", task: "inference"},
}

// TestKill9GroupedRunResumes: on a fresh emulator and project each time,
// `pipectl run sentiment --target dev` (one Databricks run of six tasks)
// is killed with SIGKILL, pipectl and its executor plugin together (a lost
// machine: nothing of pipectl cancels the Databricks run, which goes on) or
// pipectl alone, at a point that depends on the iteration (groupKillPoints); then
// `--resume` is run until it succeeds. Then: the run succeeded, pipectl
// submitted one Databricks run (the resume repairs or follows it), no task
// succeeded twice, each training registered one model version (the one
// recorded) and the champion alias moved once, no MLflow run of the
// pipectl run is RUNNING, no Databricks run is active and the data stage
// wrote one data version.
//
// PIPECTL_KILL_LOOP sets the number of iterations (killLoopIterations);
// iteration i kills at point (i-1) mod 6; iterations 7 to 12 kill pipectl
// alone (its plugin, left behind, cancels the Databricks run), 13 to 18
// both again, and so on.
func TestKill9GroupedRunResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks on the emulator")
	}
	n := killLoopIterations(t)
	times := map[string][]time.Duration{}
	failed := map[string]int{}
	for i := 1; i <= n; i++ {
		pt := groupKillPoints[(i-1)%len(groupKillPoints)]
		alone := (i-1)/len(groupKillPoints)%2 == 1
		name := pt.name
		if alone {
			name += "/alone"
		}
		started := time.Now()
		ok := t.Run(fmt.Sprintf("%02d-%s", i, strings.ReplaceAll(name, "/", "-")), func(t *testing.T) { killGroupedRun(t, pt, alone) })
		times[name] = append(times[name], time.Since(started))
		if !ok {
			failed[name]++
			if os.Getenv("PIPECTL_KILL_LOOP_ALL") == "" {
				break
			}
		}
	}
	for _, alone := range []string{"", "/alone"} {
		for _, pt := range groupKillPoints {
			if d := times[pt.name+alone]; len(d) > 0 {
				slices.Sort(d)
				t.Logf("kill point %-22s %d iteration(s), %d failed; time min %s, max %s", pt.name+alone, len(d), failed[pt.name+alone],
					d[0].Round(time.Second), d[len(d)-1].Round(time.Second))
			}
		}
	}
}

// killGroupedRun is one iteration of TestKill9GroupedRunResumes.
// With alone, only the pipectl process is killed: its plugin sees it gone
// and cancels the Databricks run, as it does when pipectl dies.
func killGroupedRun(t *testing.T, pt groupKillPoint, alone bool) {
	project, e := sentimentEmulator(t, emulator.Options{})
	python := mlPython(t)
	store := &record.Store{Dir: filepath.Join(project, ".pipectl", "runs")}
	ctx := context.Background()
	c := emulatorClient(t, e)

	if pt.submitLost {
		e.InjectHTTP(emulator.HTTPFault{Endpoint: submitCall, LoseResponse: 10 * time.Minute})
	}
	cmd, _ := startPipectl(t, project, "run", "sentiment", "--target", "dev", "--json")
	var id string
	waitFor(t, "the run record", func() bool {
		ids, _ := store.IDs()
		for _, i := range ids {
			if r, err := store.Load(i); err == nil && r.Owner.PID == cmd.Process.Pid {
				id = i
				return true
			}
		}
		return false
	})
	// taskState is the state of a task of the (one) Databricks run.
	taskState := func(key string) (jobs.RunLifeCycleState, bool) {
		ids := e.RunIDs()
		if len(ids) == 0 {
			return "", false
		}
		run, err := c.W.Jobs.GetRun(ctx, jobs.GetRunRequest{RunId: ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range run.Tasks {
			if task.TaskKey == key && task.State != nil {
				return task.State.LifeCycleState, true
			}
		}
		return "", false
	}
	ended := func(keys []string) bool {
		for _, k := range keys {
			if st, ok := taskState(k); !ok || (st != jobs.RunLifeCycleStateTerminated && st != jobs.RunLifeCycleStateInternalError && st != jobs.RunLifeCycleStateSkipped) {
				return false
			}
		}
		return true
	}
	switch {
	case pt.submitLost:
		waitForLong(t, "the Databricks run to be submitted", func() bool { return len(e.RunIDs()) > 0 })
	default:
		waitForLong(t, "task "+pt.task+" to run", func() bool {
			st, _ := taskState(pt.task)
			return st == jobs.RunLifeCycleStateRunning
		})
	}
	tree := append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...)
	if len(pt.unseen) > 0 {
		for _, pid := range tree {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		waitForLong(t, fmt.Sprintf("tasks %v to end under a frozen pipectl", pt.unseen), func() bool { return ended(pt.unseen) })
	}
	if alone {
		tree = tree[:1]
		for _, pid := range descendants(cmd.Process.Pid) {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	for _, pid := range tree {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	cmd.Wait()
	if alone {
		waitForLong(t, "the plugin to cancel the Databricks run", func() bool { return len(e.ActiveRuns()) == 0 })
	}
	if rec := showRun(t, project, id); rec.Status != record.Interrupted {
		t.Errorf("after the kill the run is %s, want interrupted", rec.Status)
	}
	if active := e.ActiveRuns(); pt.submitLost && !alone && len(active) != 1 {
		t.Errorf("after the kill, active Databricks runs %v, want the one submitted", active)
	}

	// Resume, as a user would, until it succeeds.
	var resumes []result
	for len(resumes) == 0 || resumes[len(resumes)-1].code != 0 {
		if len(resumes) == 3 {
			last := resumes[len(resumes)-1]
			t.Fatalf("3 resumes did not finish the run; the last: exit %d\n%s", last.code, tail(last.stderr, 60))
		}
		resumes = append(resumes, runPipectl(t, project, "run", "sentiment", "--target", "dev", "--resume", id))
	}
	if len(resumes) > 1 {
		t.Errorf("%d resumes to finish the run, want 1; the first: exit %d\n%s", len(resumes), resumes[0].code, tail(resumes[0].stderr, 40))
	}

	rec := showRun(t, project, id)
	if rec.Status != record.Succeeded {
		t.Fatalf("the resumed run is %s", rec.Status)
	}
	for _, s := range sentimentStages {
		if st := rec.Stages[s]; st.Status != record.Succeeded {
			t.Errorf("stage %s is %s", s, st.Status)
		}
	}
	// The resume repairs or follows the run submitted; where pipectl died
	// before it learned the run, the same idempotency token is sent again
	// (by the resume, and, killed alone, by the plugin left behind to
	// cancel the run): more calls, one run (checked below).
	if n := e.Calls()[submitCall]; n != 1 && !pt.submitLost {
		t.Errorf("%d runs/submit calls, want 1", n)
	}
	if runs := e.RunIDs(); len(runs) != 1 {
		t.Errorf("Databricks runs %v, want one", runs)
	}
	if active := e.ActiveRuns(); len(active) != 0 {
		t.Errorf("Databricks runs %v are still active", active)
	}
	succeeded := map[string]int{}
	var history []string
	for _, tr := range e.TaskRuns() {
		history = append(history, fmt.Sprintf("%s %d %s/%s", tr.TaskKey, tr.TaskRunID, tr.Life, tr.Result))
		if tr.Result == jobs.RunResultStateSuccess {
			succeeded[tr.TaskKey]++
		}
	}
	for _, s := range sentimentStages {
		if succeeded[s] != 1 {
			t.Errorf("task %s succeeded %d times, want once; task runs:\n%s", s, succeeded[s], strings.Join(history, "\n"))
		}
	}

	// MLflow: no run left RUNNING, one version per training (the recorded
	// one), one champion alias move, to the version evaluate recorded.
	st := emulatorMLflow(t, python, e, id)
	stageOf := map[string]string{}
	for _, r := range st.Runs {
		stageOf[r.ID] = r.Stage
		if r.Status == "RUNNING" {
			t.Errorf("MLflow run %s of stage %s is still RUNNING", r.ID, r.Stage)
		}
	}
	versions := map[string][]string{}
	for _, v := range st.Versions {
		versions[stageOf[v.RunID]] = append(versions[stageOf[v.RunID]], v.Version)
	}
	for _, s := range []string{"train_lr", "train_nb", "train_svc"} {
		if got, want := versions[s], rec.Stages[s].Outputs["model_version"]; len(got) != 1 || got[0] != want {
			t.Errorf("%s registered versions %v, want only the recorded %s", s, got, want)
		}
	}
	if len(st.Versions) != 3 {
		t.Errorf("%d model versions, want 3: %+v", len(st.Versions), st.Versions)
	}
	if len(st.Moves) != 1 {
		t.Errorf("evaluate moved the champion alias %d times (%v), want once", len(st.Moves), st.Moves)
	}
	if champ := rec.Stages["evaluate"].Outputs["model_version"]; st.Champion != champ || champ == "" {
		t.Errorf("the champion alias is on version %q, evaluate recorded %q", st.Champion, champ)
	}

	// One data version, whole.
	dir, err := e.VolumePath(rec.Stages["data"].Outputs["data_path"])
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if len(names) != 1 || names[0] != filepath.Base(dir) {
		t.Errorf("data versions %v in %s, want only %s", names, filepath.Dir(dir), filepath.Base(dir))
	}
	var said []string
	for _, l := range strings.Split(resumes[0].stderr, "\n") {
		if i := strings.Index(l, "databricks: "); i >= 0 && !strings.Contains(l, " task ") && !slices.Contains(said, l[i:]) {
			said = append(said, l[i:])
		}
	}
	t.Logf("%s: %d resume(s), which said: %s; task runs: %s", pt.name, len(resumes), strings.Join(said, " / "), strings.Join(history, ", "))
}

// emulatorMLflowState is what the emulator's MLflow store holds about one
// pipectl run: its runs, every model version, the evaluations that moved
// the champion alias and the version it is on.
type emulatorMLflowState struct {
	Runs []struct {
		ID, Stage, Status string
	}
	Versions []struct {
		Version, RunID string
	}
	Moves    []string
	Champion string
}

const emulatorMLflowScript = `import json, sys
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1])
runs = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id], max_results=5000,
        filter_string="tags.` + "`pipectl.run_id`" + ` = '%s'" % sys.argv[2])]
models = c.search_registered_models()
versions = [v for m in models for v in c.search_model_versions("name='%s'" % m.name)]
champion = [str(v) for m in models for a, v in (m.aliases or {}).items() if a == "champion"]
moves = [r.info.run_id for r in runs if r.data.tags.get("pipectl.stage") == "evaluate"
         and r.data.tags.get("decision") in ("first", "promoted")]
print(json.dumps({"Runs": [{"ID": r.info.run_id, "Stage": r.data.tags.get("pipectl.stage", ""), "Status": r.info.status} for r in runs],
                  "Versions": [{"Version": str(v.version), "RunID": v.run_id} for v in versions],
                  "Moves": moves, "Champion": ",".join(champion)}))`

func emulatorMLflow(t *testing.T, python string, e *emulator.Emulator, runID string) emulatorMLflowState {
	t.Helper()
	var st emulatorMLflowState
	out := pythonOut(t, python, emulatorMLflowScript, e.MLflowStore(), runID)
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(out, '\n')+1:]), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return st
}

// emulatorClient is a Databricks client of e, as pipectl makes one.
func emulatorClient(t *testing.T, e *emulator.Emulator) *databricks.Client {
	t.Helper()
	env := map[string]string{"DATABRICKS_HOST": e.URL, "DATABRICKS_TOKEN": emulatorToken}
	c, err := databricks.NewClient(&databricks.Config{}, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
