package databricks_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/spec"
	"github.com/pipectl/pipectl/internal/databricks/dbtest"
	"github.com/pipectl/pipectl/internal/databricks/emulator"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// demoSpec is a two-stage pipeline of the test notebooks: second reads
// first's output through a reference, first reads the run date.
const demoSpec = `package p

_db: {
	workspace_root:  "/Workspace/Shared/pipectl/test"
	catalog:         *"dev" | string
	schema:          "s"
	volume:          "v"
	experiment_root: "/Shared/pipectl/test"
}

pipelines: demo: {
	description: "demo"
	schedule:    "0 6 * * 1"
	default_target: "dev"
	tags: team: "ml"
	targets: {
		dev: {executor: "databricks", databricks: _db}
		prod: {executor: "databricks", mode: "production", databricks: _db & {catalog: "prod"}}
	}
	stages: {
		first: {type: "custom", notebook: "notebooks/echo.py", outputs: ["echo", "n"], timeout: "10m", retries: 2,
			params: {message: "MESSAGE ${run.date}"}}
		second: {type: "custom", notebook: "notebooks/echo.py", outputs: ["echo"],
			params: {message: "got ${stages.first.outputs.echo} n=${stages.first.outputs.n}", upstream: "first"}}
	}
}
`

// deployRig is a project with demoSpec and an emulator.
type deployRig struct {
	*rig
}

func newDeployRig(t *testing.T, opts emulator.Options) *deployRig {
	r := newRig(t, opts)
	writeSpec(t, r.project, "hello")
	return &deployRig{rig: r}
}

func writeSpec(t *testing.T, project, message string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(project, "specs"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(demoSpec, "MESSAGE", message, 1)
	if err := os.WriteFile(filepath.Join(project, "specs", "p.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *deployRig) plan(t *testing.T, target string) *plan.Plan {
	t.Helper()
	proj, ds := spec.Load(nil, spec.Options{Root: r.project})
	if ds.HasErrors() {
		t.Fatalf("spec: %v", ds)
	}
	s, err := spec.LoadSchema()
	if err != nil {
		t.Fatal(err)
	}
	pl, ds := plan.Build(s, proj.Pipelines["demo"], plan.Options{Target: target})
	if ds.HasErrors() {
		t.Fatalf("plan: %v", ds)
	}
	return pl
}

func (r *deployRig) deploy(t *testing.T, target string, dry bool) *databricks.Outcome {
	t.Helper()
	d := &databricks.Deployer{Env: dbtest.Env(r.e)}
	out, err := d.Deploy(context.Background(), r.plan(t, target), databricks.DeployOptions{ProjectRoot: r.project, GitCommit: "abc123", DryRun: dry})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return out
}

func (r *deployRig) jobs(t *testing.T) []jobs.BaseJob {
	t.Helper()
	c, err := databricks.NewClient(&databricks.Config{}, dbtest.Env(r.e), nil)
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.W.Jobs.ListAll(context.Background(), jobs.ListJobsRequest{ExpandTasks: true})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestJobSettings(t *testing.T) {
	r := newDeployRig(t, emulator.Options{Python: dbtest.NoPython})
	out := r.deploy(t, "dev", false)
	job := r.jobs(t)[0]
	s := job.Settings
	if s.Name != "[pipectl] demo (dev)" || out.JobID != job.JobId {
		t.Fatalf("name %q, id %d vs %d", s.Name, out.JobID, job.JobId)
	}
	for k, v := range map[string]string{"pipectl_pipeline": "demo", "pipectl_target": "dev", "pipectl_git_commit": "abc123", "team": "ml"} {
		if s.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, s.Tags[k], v)
		}
	}
	if len(s.Tags["pipectl_spec_hash"]) != 64 || s.Tags[databricks.KeyTag] != databricks.JobKey("demo", "dev", "/Workspace/Shared/pipectl/test") {
		t.Errorf("tags %v", s.Tags)
	}
	if s.Schedule == nil || s.Schedule.QuartzCronExpression != "0 0 6 ? * MON" || s.Schedule.TimezoneId != "UTC" || s.Schedule.PauseStatus != jobs.PauseStatusPaused {
		t.Errorf("schedule %+v (a development target deploys paused)", s.Schedule)
	}
	if len(s.Tasks) != 2 || s.Tasks[0].TaskKey != "first" || s.Tasks[1].DependsOn[0].TaskKey != "first" {
		t.Fatalf("tasks %+v", s.Tasks)
	}
	first, second := s.Tasks[0], s.Tasks[1]
	if got := first.NotebookTask.BaseParameters["message"]; got != "hello {{job.start_time.iso_date}}" {
		t.Errorf("first message %q", got)
	}
	if got := second.NotebookTask.BaseParameters["message"]; got != "got {{tasks.first.values.echo}} n={{tasks.first.values.n}}" {
		t.Errorf("second message %q", got)
	}
	if got := first.NotebookTask.BaseParameters["pipectl_run_id"]; got != "{{job.run_id}}" {
		t.Errorf("pipectl_run_id %q", got)
	}
	if first.TimeoutSeconds != 600 || first.MaxRetries != 2 || first.MinRetryIntervalMillis != 10000 || first.EnvironmentKey != "pipectl" {
		t.Errorf("first task %+v", first)
	}

	if s.Tags["pipectl_scheduler"] != "github" {
		t.Errorf("tag pipectl_scheduler = %q, want github (the default)", s.Tags["pipectl_scheduler"])
	}
}

// TestDeployedSchedulePause: a deployed job always carries the spec's
// schedule, and it runs (UNPAUSED) only when the pipeline's scheduler is
// databricks and the target is a production one; the job's tag and the
// outcome say which scheduler decided.
func TestDeployedSchedulePause(t *testing.T) {
	r := newDeployRig(t, emulator.Options{Python: dbtest.NoPython})
	tests := []struct {
		scheduler, target string
		want              jobs.PauseStatus
		why               string
	}{
		{"", "dev", jobs.PauseStatusPaused, "scheduler github: a GitHub workflow cron runs it"},
		{"", "prod", jobs.PauseStatusPaused, "scheduler github: a GitHub workflow cron runs it"},
		{"github", "prod", jobs.PauseStatusPaused, "scheduler github: a GitHub workflow cron runs it"},
		{"databricks", "dev", jobs.PauseStatusPaused, "scheduler databricks, but dev is a development target"},
		{"databricks", "prod", jobs.PauseStatusUnpaused, "scheduler databricks on production target prod"},
		// Switching back pauses the production job again.
		{"github", "prod", jobs.PauseStatusPaused, "scheduler github: a GitHub workflow cron runs it"},
	}
	for _, tc := range tests {
		setScheduler(t, r.project, tc.scheduler)
		wantTag := tc.scheduler
		if wantTag == "" {
			wantTag = "github"
		}
		dry := r.deploy(t, tc.target, true)
		if dry.Schedule == nil || dry.Schedule.PauseStatus != tc.want || dry.Scheduler != wantTag || dry.PauseWhy != tc.why {
			t.Errorf("scheduler %q on %s, dry run: schedule %+v, scheduler %q, why %q; want %s, %q", tc.scheduler, tc.target, dry.Schedule, dry.Scheduler, dry.PauseWhy, tc.want, tc.why)
		}
		out := r.deploy(t, tc.target, false)
		var got *jobs.JobSettings
		for _, j := range r.jobs(t) {
			if j.JobId == out.JobID {
				got = j.Settings
			}
		}
		if got == nil || got.Schedule == nil {
			t.Fatalf("scheduler %q on %s: job %d has no schedule: %+v", tc.scheduler, tc.target, out.JobID, got)
		}
		if got.Schedule.PauseStatus != tc.want || got.Schedule.QuartzCronExpression != "0 0 6 ? * MON" || got.Tags["pipectl_scheduler"] != wantTag {
			t.Errorf("scheduler %q on %s: schedule %+v, tag pipectl_scheduler %q; want %s, tag %s",
				tc.scheduler, tc.target, got.Schedule, got.Tags["pipectl_scheduler"], tc.want, wantTag)
		}
	}
}

// setScheduler rewrites the demo spec with scheduler set ("" leaves the
// default).
func setScheduler(t *testing.T, project, scheduler string) {
	t.Helper()
	writeSpec(t, project, "hello")
	if scheduler == "" {
		return
	}
	path := filepath.Join(project, "specs", "p.cue")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const line = `schedule:    "0 6 * * 1"`
	out := strings.Replace(string(src), line, line+"\n\tscheduler: \""+scheduler+"\"", 1)
	if out == string(src) {
		t.Fatalf("demo spec has no %s", line)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeployIsIdempotent(t *testing.T) {
	r := newDeployRig(t, emulator.Options{Python: dbtest.NoPython})
	dry := r.deploy(t, "dev", true)
	if dry.Action != "create" || !strings.Contains(dry.Settings, `"name": "[pipectl] demo (dev)"`) || dry.Code.Present {
		t.Fatalf("dry run: %+v", dry)
	}
	if calls := r.e.Calls(); calls["POST /api/2.2/jobs/create"]+calls["POST /api/2.0/workspace/import"]+calls["POST /api/2.0/workspace/mkdirs"] != 0 {
		t.Fatalf("a dry run changed the workspace: %v", calls)
	}
	first := r.deploy(t, "dev", false)
	second := r.deploy(t, "dev", false)
	if first.Action != "create" || !first.Code.Imported || second.Action != "unchanged" || !second.Code.Present || second.JobID != first.JobID {
		t.Fatalf("first %+v\nsecond %+v", first, second)
	}
	if n := len(r.jobs(t)); n != 1 {
		t.Fatalf("%d jobs after two deploys, want 1", n)
	}

	writeSpec(t, r.project, "changed")
	dry = r.deploy(t, "dev", true)
	if dry.Action != "update" || !strings.Contains(dry.Diff, `-          "message": "hello {{job.start_time.iso_date}}",`) ||
		!strings.Contains(dry.Diff, `+          "message": "changed {{job.start_time.iso_date}}",`) {
		t.Fatalf("dry update diff:\n%s", dry.Diff)
	}
	if got := r.jobs(t)[0].Settings.Tasks[0].NotebookTask.BaseParameters["message"]; !strings.HasPrefix(got, "hello") {
		t.Fatalf("a dry run updated the job: %q", got)
	}
	up := r.deploy(t, "dev", false)
	if up.Action != "update" || up.JobID != first.JobID {
		t.Fatalf("update %+v", up)
	}
	all := r.jobs(t)
	if len(all) != 1 || !strings.HasPrefix(all[0].Settings.Tasks[0].NotebookTask.BaseParameters["message"], "changed") {
		t.Fatalf("after the update: %d jobs, %+v", len(all), all[0].Settings.Tasks[0].NotebookTask)
	}
}

// TestConcurrentDeploysLeaveOneJob makes deploys race: the emulator holds
// their first job listings until all have arrived, so every deploy sees no
// job and creates one, and they must converge on one.
func TestConcurrentDeploysLeaveOneJob(t *testing.T) {
	// The emulator gathers the first n listings, but a loaded machine can
	// still let one deploy's create land before another's listing is served;
	// such a try proves nothing either way, so it is tried again.
	const n, tries = 4, 5
	for try := 1; try <= tries; try++ {
		if raced := deployRace(t, n); raced {
			return
		}
		t.Logf("try %d: the deploys did not race; trying again", try)
	}
	t.Fatalf("the deploys did not race in %d tries; the test proves nothing", tries)
}

// deployRace runs n concurrent deploys against a fresh emulator and checks
// that they converge on one job; it reports false, checking nothing, when
// the deploys did not all create a job (they did not race).
func deployRace(t *testing.T, n int) bool {
	t.Helper()
	r := newDeployRig(t, emulator.Options{Python: dbtest.NoPython})
	r.e.InjectHTTP(emulator.HTTPFault{Endpoint: "GET /api/2.2/jobs/list", Gather: n})
	pl := r.plan(t, "dev")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &databricks.Deployer{Env: dbtest.Env(r.e)}
			if _, err := d.Deploy(context.Background(), pl, databricks.DeployOptions{ProjectRoot: r.project, GitCommit: "abc123"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := r.e.Calls()
	if calls["POST /api/2.2/jobs/create"] != n {
		return false
	}
	all := r.jobs(t)
	if len(all) != 1 {
		t.Fatalf("%d jobs after %d concurrent deploys, want 1", len(all), n)
	}
	if again := r.deploy(t, "dev", false); again.Action != "unchanged" || again.JobID != all[0].JobId {
		t.Fatalf("after the race: %+v", again)
	}
	return true
}

func TestDestroy(t *testing.T) {
	r := newDeployRig(t, emulator.Options{Python: dbtest.NoPython})
	out := r.deploy(t, "dev", false)
	// A job with the same name that pipectl does not manage stays.
	c, _ := databricks.NewClient(&databricks.Config{}, dbtest.Env(r.e), nil)
	foreign, err := c.W.Jobs.Create(context.Background(), jobs.CreateJob{Name: out.Name})
	if err != nil {
		t.Fatal(err)
	}
	d := &databricks.Deployer{Env: dbtest.Env(r.e)}
	dry, err := d.Destroy(context.Background(), r.plan(t, "dev"), true)
	if err != nil || dry.Action != "delete" || len(dry.Removed) != 1 || len(r.jobs(t)) != 2 {
		t.Fatalf("dry destroy: %v %+v", err, dry)
	}
	gone, err := d.Destroy(context.Background(), r.plan(t, "dev"), false)
	if err != nil || gone.Removed[0] != out.JobID || len(gone.Foreign) != 1 || gone.Foreign[0] != foreign.JobId {
		t.Fatalf("destroy: %v %+v", err, gone)
	}
	if all := r.jobs(t); len(all) != 1 || all[0].JobId != foreign.JobId {
		t.Fatalf("after destroy: %+v", all)
	}
	again, err := d.Destroy(context.Background(), r.plan(t, "dev"), false)
	if err != nil || again.Action != "absent" {
		t.Fatalf("second destroy: %v %+v", err, again)
	}
}

// TestRunNowDeployedJob runs the deployed job on the emulator: the second
// task gets the first's output through task values, and the run date
// through {{job.start_time.iso_date}}.
func TestRunNowDeployedJob(t *testing.T) {
	r := newDeployRig(t, emulator.Options{})
	out := r.deploy(t, "dev", false)
	c, _ := databricks.NewClient(&databricks.Config{}, dbtest.Env(r.e), nil)
	ctx := context.Background()
	now, err := c.W.Jobs.RunNow(ctx, jobs.RunNow{JobId: out.JobID})
	if err != nil {
		t.Fatal(err)
	}
	run := waitTerminated(t, c, now.RunId)
	if run.State.ResultState != jobs.RunResultStateSuccess {
		t.Fatalf("run %+v", run.State)
	}
	o, err := c.W.Jobs.GetRunOutput(ctx, jobs.GetRunOutputRequest{RunId: run.Tasks[1].RunId})
	if err != nil {
		t.Fatal(err)
	}
	date := time.UnixMilli(run.StartTime).UTC().Format("2006-01-02")
	if want := `"echo": "GOT HELLO ` + date + ` N=42"`; !strings.Contains(o.NotebookOutput.Result, want) {
		t.Fatalf("second task output %s lacks %s", o.NotebookOutput.Result, want)
	}
}

func waitTerminated(t *testing.T, c *databricks.Client, id int64) *jobs.Run {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		run, err := c.W.Jobs.GetRun(context.Background(), jobs.GetRunRequest{RunId: id})
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != nil && run.Status.State == jobs.RunLifecycleStateV2StateTerminated {
			return run
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("run %d did not terminate", id)
	return nil
}
