package databricks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/schedule"
	"github.com/pipectl/pipectl/engine/spec"
)

// Tags pipectl puts on the jobs it deploys. KeyTag identifies a deployed
// job without any local state: deploys find their job by name and key.
const (
	KeyTag      = "pipectl_key"
	pipelineTag = "pipectl_pipeline"
	targetTag   = "pipectl_target"
	specTag     = "pipectl_spec_hash"
	commitTag   = "pipectl_git_commit"
	// schedulerTag records which system triggers the schedule (the spec's
	// scheduler), so a workspace user sees why a job is paused.
	schedulerTag = "pipectl_scheduler"
	// userTag names the developer of a per-user (development) job.
	userTag = "pipectl_user"
)

// JobName is the deterministic name of the job of a pipeline on a target.
func JobName(pipeline, target string) string {
	return fmt.Sprintf("[pipectl] %s (%s)", pipeline, target)
}

// JobKey is the value of the pipectl_key tag of that job: a pipeline, a
// target and the workspace folder pipectl deploys into.
func JobKey(pipeline, target, workspaceRoot string) string {
	sum := sha256.Sum256([]byte("pipectl-job|" + pipeline + "|" + target + "|" + apiPath(workspaceRoot)))
	return hex.EncodeToString(sum[:])[:16]
}

// deployRefs maps a plan's references to dynamic value references of a
// job: upstream outputs to task values, the run to the job run.
func deployRefs(r spec.Ref) (string, bool) {
	switch {
	case r.Stage != "":
		return "{{tasks." + r.Stage + ".values." + r.Output + "}}", true
	case r.Run == "date":
		return "{{job.start_time.iso_date}}", true
	case r.Run == "id":
		return "{{job.run_id}}", true
	}
	return "", false
}

// SchedulePause decides whether a deployed job's schedule runs: only when
// the pipeline's scheduler is Databricks and the target is a production
// one. Otherwise the job still carries the schedule, paused, so that it
// exists for manual runs and switching the scheduler is one line in the
// spec. why says which rule decided, for people.
func SchedulePause(p *spec.Pipeline, t *spec.Target) (status jobs.PauseStatus, why string) {
	switch {
	case p.Scheduler != spec.SchedulerDatabricks:
		return jobs.PauseStatusPaused, fmt.Sprintf("scheduler %s: a GitHub workflow cron runs it", p.Scheduler)
	case t.Mode != "production":
		return jobs.PauseStatusPaused, fmt.Sprintf("scheduler databricks, but %s is a %s target", t.Name, t.Mode)
	}
	return jobs.PauseStatusUnpaused, fmt.Sprintf("scheduler databricks on production target %s", t.Name)
}

// JobSettings renders a plan as one multi-task job: a notebook task per
// stage with depends_on from the plan's graph, parameters wired through
// task values, the schedule as Quartz cron in UTC (paused unless
// SchedulePause says otherwise) and tags that identify the deployment.
func JobSettings(pl *plan.Plan, cfg *Config, loc codeLocation, reqs []string, gitCommit string) (jobs.JobSettings, error) {
	p, t := pl.Pipeline, pl.Target
	comp := NewComputeSpec(cfg, reqs)
	s := jobs.JobSettings{
		Name:              cfg.JobName(p.Name, t.Name),
		Description:       strings.TrimSpace(p.Description + "\n\nDeployed by pipectl from specs; changes made here are overwritten by the next pipectl deploy."),
		MaxConcurrentRuns: cfg.MaxConcurrentRuns,
		Queue:             &jobs.QueueSettings{Enabled: true},
		Environments:      comp.Environments(),
		JobClusters:       comp.JobClusters(),
		GitSource:         loc.gitSource(),
		EditMode:          jobs.JobEditModeUiLocked,
	}
	own := map[string]string{pipelineTag: p.Name, targetTag: t.Name, specTag: p.Hash,
		KeyTag: JobKey(p.Name, t.Name, cfg.WorkspaceRoot)}
	if gitCommit != "" {
		own[commitTag] = gitCommit
	}
	if cfg.User != "" {
		own[userTag] = cfg.User
	}
	if p.Schedule != "" {
		own[schedulerTag] = p.Scheduler
	}
	tags := maps.Clone(p.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	maps.Copy(tags, own)
	applyOps(cfg.Job, &s, tags)
	if len(tags) > 25 {
		return s, fmt.Errorf("the job would carry %d tags; Databricks allows 25 (pipectl uses %d): drop some of the pipeline's tags", len(tags), len(own))
	}
	s.Tags = tags
	if p.Schedule != "" {
		sch, err := schedule.Parse(p.Schedule)
		if err != nil {
			return s, err
		}
		quartz, err := sch.Quartz()
		if err != nil {
			return s, err
		}
		pause, _ := SchedulePause(p, t)
		s.Schedule = &jobs.CronSchedule{QuartzCronExpression: quartz, TimezoneId: schedule.Timezone, PauseStatus: pause}
	}
	for _, name := range pl.Order() {
		st := pl.Stages[name]
		if st.Executor != Name {
			return s, fmt.Errorf("stage %s runs on executor %q on target %s; a deployed Databricks job can only run databricks stages", name, st.Executor, t.Name)
		}
		params, err := st.RenderParams(deployRefs)
		if err != nil {
			return s, err
		}
		ctxTask := executor.Task{RunID: "{{job.run_id}}", Pipeline: p.Name, Target: t.Name, Stage: name, Params: params, GitCommit: gitCommit}
		nt, err := loc.notebookTask(st.Notebook, executor.NotebookParams(ctxTask, place(cfg, loc.projectRoot())))
		if err != nil {
			return s, err
		}
		task := jobs.Task{TaskKey: name, NotebookTask: nt, TimeoutSeconds: timeoutSeconds(st.Timeout), MaxRetries: st.Retries}
		if st.Retries > 0 {
			task.MinRetryIntervalMillis = int(st.RetryBackoff.Milliseconds())
		}
		for _, need := range slices.Sorted(slices.Values(st.Needs)) {
			task.DependsOn = append(task.DependsOn, jobs.TaskDependency{TaskKey: need})
		}
		comp.ApplyJob(&task)
		s.Tasks = append(s.Tasks, task)
	}
	return s, nil
}

// Deployer deploys plans as jobs.
type Deployer struct {
	// Env reads the environment (credentials, GITHUB_*).
	Env Env
	// Transport is the HTTP transport under the retry layer (nil: default).
	Transport http.RoundTripper
	// Stderr receives progress lines while an unreachable workspace is
	// retried (nil: none).
	Stderr io.Writer
}

// DeployOptions select what Deploy does.
type DeployOptions struct {
	// ProjectRoot holds the notebooks.
	ProjectRoot string
	// GitCommit is the project's commit (tags and the git_commit parameter);
	// a git source's commit takes precedence.
	GitCommit string
	// DryRun reads the workspace and reports, but changes nothing.
	DryRun bool
}

// Outcome is what a deploy did (or, dry, would do).
type Outcome struct {
	Host   string
	DryRun bool
	// Code describes the notebooks' location: a code folder (imported now,
	// or already there) or a git source.
	Code CodeOutcome
	// Wheel is the project's package as a wheel in the target's Volume
	// (zero when the project has none).
	Wheel WheelOutcome
	// Action is "create", "update" or "unchanged" (deploy), "delete" or
	// "absent" (destroy).
	Action string
	JobID  int64
	Name   string
	// Diff is a line diff of the job settings, deployed vs desired, for
	// updates; Settings is the whole desired settings for a create.
	Diff     string
	Settings string
	// Removed are duplicate or destroyed jobs; Foreign are jobs with the
	// same name that pipectl does not manage.
	Removed []int64
	Foreign []int64
	// Dropped are settings made outside pipectl that the update removes.
	Dropped []string
	// Drift are the settings changed in the workspace since the last
	// deploy (its record), which this deploy overwrites.
	Drift []string
	// Permissions says whether the job's permissions differ from the
	// spec's (and were, unless dry, set).
	Permissions bool
	// Schedule is the deployed (or, dry, desired) job schedule, nil for an
	// unscheduled pipeline or a destroy; Scheduler is the pipeline's
	// scheduler and PauseWhy the reason for Schedule's pause status.
	Schedule  *jobs.CronSchedule
	Scheduler string
	PauseWhy  string
}

// CodeOutcome describes the notebooks' location.
type CodeOutcome struct {
	Folder   string
	Files    int
	Imported bool
	Present  bool
	Git      *GitSource
}

// Deploy creates or updates the job of a plan. It is idempotent and safe
// without local state: the job is found by name and key tag and reset;
// after a create it lists again and converges on the lowest job id, so two
// racing deploys leave one job.
func (d *Deployer) Deploy(ctx context.Context, pl *plan.Plan, opts DeployOptions) (*Outcome, error) {
	cfg, c, err := d.connect(ctx, pl)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Host: c.Host, DryRun: opts.DryRun, Name: cfg.JobName(pl.Pipeline.Name, pl.Target.Name)}
	loc, commit, err := d.code(ctx, c, cfg, pl, opts, out)
	if err != nil {
		return nil, err
	}
	var u uploads
	reqs, wheel, err := libraries(ctx, c, cfg, opts.ProjectRoot, &u, opts.DryRun, nil)
	if err != nil {
		return nil, err
	}
	out.Wheel = wheel
	desired, err := JobSettings(pl, cfg, loc, reqs, commit)
	if err != nil {
		return nil, err
	}
	if desired.Schedule != nil {
		out.Schedule, out.Scheduler = desired.Schedule, pl.Pipeline.Scheduler
		_, out.PauseWhy = SchedulePause(pl.Pipeline, pl.Target)
	}
	key := desired.Tags[KeyTag]
	ours, foreign, err := findJobs(ctx, c, desired.Name, key)
	if err != nil {
		return nil, err
	}
	out.Foreign = foreign
	if len(ours) == 0 {
		out.Action = "create"
		out.Settings = renderSettings(desired)
		if opts.DryRun {
			out.Permissions = cfg.managedPermissions() != nil
			return out, nil
		}
		created, err := c.W.Jobs.Create(ctx, createJob(desired))
		if err != nil {
			return nil, c.fail(fmt.Sprintf("create job %q", desired.Name), err)
		}
		out.JobID = created.JobId
		if err := d.created(ctx, c, cfg, key, desired, out); err != nil {
			return nil, err
		}
		// Another deploy may have created one at the same time: converge.
		if ours, _, err = findJobs(ctx, c, desired.Name, key); err != nil {
			return nil, err
		}
		if len(ours) > 1 {
			if err := d.converge(ctx, c, ours, desired, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	keep := ours[0]
	out.JobID = keep
	job, err := c.W.Jobs.Get(ctx, jobs.GetJobRequest{JobId: keep})
	if err != nil {
		return nil, c.fail(fmt.Sprintf("read job %d", keep), err)
	}
	current := jobs.JobSettings{}
	if job.Settings != nil {
		current = *job.Settings
	}
	rec, err := recordPath(cfg, key)
	if err != nil {
		return nil, err
	}
	last, err := readRecord(ctx, c, rec)
	if err != nil {
		return nil, err
	}
	diff, dropped := settingsDiff(current, desired)
	out.Diff, out.Drift = diff, drift(last.settings(), current)
	if last == nil {
		out.Dropped = dropped // without a record, what the spec does not set is all pipectl knows
	}
	// Reset the job only when its settings differ; permissions have their
	// own call.
	reset := diff != "" || len(out.Dropped) > 0 || len(out.Drift) > 0
	perms := cfg.managedPermissions()
	var owner *jobs.JobAccessControlRequest
	if perms != nil {
		var have map[Permission]bool
		if owner, have, err = readPermissions(ctx, c, keep); err != nil {
			return nil, err
		}
		out.Permissions = !maps.Equal(have, permissionSet(perms))
		if last != nil && last.Permissions != nil && !maps.Equal(have, permissionSet(last.Permissions)) {
			out.Drift = append(out.Drift, "permissions")
			slices.Sort(out.Drift)
		}
	}
	out.Action = "update"
	if !reset && !out.Permissions {
		out.Action = "unchanged"
	}
	if opts.DryRun {
		out.Removed = ours[1:]
		return out, nil
	}
	if reset {
		if err := c.W.Jobs.Reset(ctx, jobs.ResetJob{JobId: keep, NewSettings: desired}); err != nil {
			return nil, c.fail(fmt.Sprintf("reset job %d", keep), err)
		}
	}
	if out.Permissions {
		if err := setPermissions(ctx, c, keep, owner, perms); err != nil {
			return nil, err
		}
	}
	if err := writeRecord(ctx, c, rec, last, desired, perms); err != nil {
		return nil, err
	}
	if len(ours) > 1 {
		if err := d.converge(ctx, c, ours, desired, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// created finishes a create: the spec's permissions (keeping the owner)
// and the deploy record.
func (d *Deployer) created(ctx context.Context, c *Client, cfg *Config, key string, desired jobs.JobSettings, out *Outcome) error {
	perms := cfg.managedPermissions()
	if perms != nil {
		owner, have, err := readPermissions(ctx, c, out.JobID)
		if err != nil {
			return err
		}
		if out.Permissions = !maps.Equal(have, permissionSet(perms)); out.Permissions {
			if err := setPermissions(ctx, c, out.JobID, owner, perms); err != nil {
				return err
			}
		}
	}
	rec, err := recordPath(cfg, key)
	if err != nil {
		return err
	}
	return writeRecord(ctx, c, rec, nil, desired, perms)
}

// converge keeps the lowest job id, resets it to the desired settings and
// deletes the other jobs with the key. A job another deploy deleted first
// is fine.
func (d *Deployer) converge(ctx context.Context, c *Client, ids []int64, desired jobs.JobSettings, out *Outcome) error {
	keep := ids[0]
	if err := c.W.Jobs.Reset(ctx, jobs.ResetJob{JobId: keep, NewSettings: desired}); err != nil && !errors.Is(err, apierr.ErrNotFound) {
		return c.fail(fmt.Sprintf("reset job %d", keep), err)
	}
	for _, id := range ids[1:] {
		if err := c.W.Jobs.Delete(ctx, jobs.DeleteJob{JobId: id}); err != nil && !isMissingJob(err) {
			return c.fail(fmt.Sprintf("delete duplicate job %d", id), err)
		}
		out.Removed = append(out.Removed, id)
	}
	out.JobID = keep
	return nil
}

// isMissingJob recognises "Job N does not exist." (400 on jobs/delete).
func isMissingJob(err error) bool {
	return errors.Is(err, apierr.ErrNotFound) || strings.Contains(err.Error(), "does not exist")
}

// Destroy deletes the job of a pipeline on a target (every job with its
// key). The imported code folders stay: they are shared and
// content-addressed.
func (d *Deployer) Destroy(ctx context.Context, pl *plan.Plan, dryRun bool) (*Outcome, error) {
	cfg, c, err := d.connect(ctx, pl)
	if err != nil {
		return nil, err
	}
	name := cfg.JobName(pl.Pipeline.Name, pl.Target.Name)
	out := &Outcome{Host: c.Host, DryRun: dryRun, Name: name, Action: "delete"}
	ours, foreign, err := findJobs(ctx, c, name, JobKey(pl.Pipeline.Name, pl.Target.Name, cfg.WorkspaceRoot))
	if err != nil {
		return nil, err
	}
	out.Foreign = foreign
	if len(ours) == 0 {
		out.Action = "absent"
		return out, nil
	}
	for _, id := range ours {
		if !dryRun {
			if err := c.W.Jobs.Delete(ctx, jobs.DeleteJob{JobId: id}); err != nil && !isMissingJob(err) {
				return nil, c.fail(fmt.Sprintf("delete job %d", id), err)
			}
		}
		out.Removed = append(out.Removed, id)
	}
	if !dryRun {
		if err := deleteRecord(ctx, c, cfg, JobKey(pl.Pipeline.Name, pl.Target.Name, cfg.WorkspaceRoot)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// connect parses the plan's target config, connects to its workspace and
// applies per-user mode.
func (d *Deployer) connect(ctx context.Context, pl *plan.Plan) (*Config, *Client, error) {
	if pl.Target.Executor != Name {
		return nil, nil, fmt.Errorf("target %s runs on executor %q; pipectl deploy deploys databricks targets", pl.Target.Name, pl.Target.Executor)
	}
	cfg, err := ParseConfig(pl.Target.Config(Name))
	if err != nil {
		return nil, nil, err
	}
	c, err := newClient(cfg, d.Env, newRetryTransport(d.Transport), progressTo(d.Stderr))
	if err != nil {
		return nil, nil, err
	}
	if cfg, err = Personalize(ctx, c, cfg); err != nil {
		return nil, nil, err
	}
	return cfg, c, nil
}

// code makes the notebooks reachable (imports them unless dry) and returns
// their location and the commit to record.
func (d *Deployer) code(ctx context.Context, c *Client, cfg *Config, pl *plan.Plan, opts DeployOptions, out *Outcome) (codeLocation, string, error) {
	commit := opts.GitCommit
	if cfg.Source.Kind == SourceGit {
		g, err := cfg.GitSource(d.Env)
		if err != nil {
			return codeLocation{}, "", err
		}
		out.Code.Git = &g
		if g.Commit != "" {
			commit = g.Commit
		}
		return codeLocation{Git: &g}, commit, nil
	}
	var notebooks []string
	for _, name := range pl.Order() {
		notebooks = append(notebooks, pl.Stages[name].Notebook)
	}
	b, err := collectCode(ctx, opts.ProjectRoot, notebooks)
	if err != nil {
		return codeLocation{}, "", err
	}
	folder, err := codeFolder(cfg.WorkspaceRoot, b.Hash)
	if err != nil {
		return codeLocation{}, "", err
	}
	out.Code.Folder, out.Code.Files = folder, len(b.Files)
	if opts.DryRun {
		exists, err := codeExists(ctx, c, folder)
		if err != nil {
			return codeLocation{}, "", err
		}
		out.Code.Present = exists
	} else {
		var u uploads
		_, imported, err := u.ensureCode(ctx, c, cfg.WorkspaceRoot, b)
		if err != nil {
			return codeLocation{}, "", err
		}
		out.Code.Imported, out.Code.Present = imported, !imported
	}
	return codeLocation{Folder: folder}, commit, nil
}

// findJobs lists the jobs named name and splits them into those with the
// key tag (ours, lowest id first) and the others.
func findJobs(ctx context.Context, c *Client, name, key string) (ours, foreign []int64, err error) {
	all, err := c.W.Jobs.ListAll(ctx, jobs.ListJobsRequest{Name: name})
	if err != nil {
		return nil, nil, c.fail(fmt.Sprintf("list jobs named %q", name), err)
	}
	for _, j := range all {
		if j.Settings != nil && j.Settings.Tags[KeyTag] == key {
			ours = append(ours, j.JobId)
		} else {
			foreign = append(foreign, j.JobId)
		}
	}
	slices.Sort(ours)
	slices.Sort(foreign)
	return ours, foreign, nil
}

func createJob(s jobs.JobSettings) jobs.CreateJob {
	var c jobs.CreateJob
	_ = convertJSON(s, &c)
	return c
}

// renderSettings is the settings as indented JSON with sorted keys.
func renderSettings(s jobs.JobSettings) string {
	m := settingsMap(s)
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b)
}

func settingsMap(s jobs.JobSettings) map[string]any {
	b, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// settingsDiff compares deployed settings with desired ones. Fields the
// workspace fills in (defaults pipectl never sets) are left out of the
// comparison; top-level fields set outside pipectl, which a reset removes,
// are returned as dropped.
func settingsDiff(current, desired jobs.JobSettings) (string, []string) {
	cur, want := settingsMap(current), settingsMap(desired)
	var dropped []string
	for k, v := range cur {
		if _, ok := want[k]; !ok && !isEmptyValue(v) && !filledIn[k] {
			dropped = append(dropped, k)
		}
	}
	slices.Sort(dropped)
	pruned := prune(cur, want)
	a, _ := json.MarshalIndent(pruned, "", "  ")
	b, _ := json.MarshalIndent(want, "", "  ")
	return lineDiff(strings.Split(string(a), "\n"), strings.Split(string(b), "\n"), 3), dropped
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case float64:
		return x == 0
	}
	return false
}

// prune keeps of have only the keys shape has, recursively (lists element
// by element), so that fields the workspace adds do not show as changes.
func prune(have, shape any) any {
	switch h := have.(type) {
	case map[string]any:
		s, ok := shape.(map[string]any)
		if !ok {
			return have
		}
		out := map[string]any{}
		for k, v := range h {
			if sv, ok := s[k]; ok {
				out[k] = prune(v, sv)
			}
		}
		return out
	case []any:
		s, ok := shape.([]any)
		if !ok {
			return have
		}
		out := make([]any, len(h))
		for i, v := range h {
			if i < len(s) {
				out[i] = prune(v, s[i])
			} else {
				out[i] = v
			}
		}
		return out
	}
	return have
}
