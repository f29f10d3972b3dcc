package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strings"

	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/spec"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// DeployCmd turns a pipeline into one scheduled multi-task Databricks job
// per target, or deletes it. It needs no local state: the job is found by
// its name and pipectl_key tag, so re-runs and concurrent runs converge on
// one job.
type DeployCmd struct {
	SpecFlags
	Pipeline string `arg:"" help:"Pipeline name."`
	Target   string `short:"t" required:"" help:"Databricks target to deploy to."`
	DryRun   bool   `name:"dry-run" help:"Print what would be created, changed or deleted; change nothing."`
	Destroy  bool   `help:"Delete the pipeline's job on the target instead."`
	JSON     bool   `name:"json" help:"Print the outcome as JSON."`
}

// deployJSON is the stable JSON form of a deploy's outcome.
type deployJSON struct {
	Pipeline string              `json:"pipeline"`
	Target   string              `json:"target"`
	Host     string              `json:"host"`
	DryRun   bool                `json:"dry_run"`
	Action   string              `json:"action"`
	JobID    int64               `json:"job_id,omitempty"`
	JobName  string              `json:"job_name"`
	Code     any                 `json:"code,omitempty"`
	Wheel    any                 `json:"wheel,omitempty"`
	Diff     string              `json:"diff,omitempty"`
	Settings any                 `json:"settings,omitempty"`
	Removed  []int64             `json:"removed_job_ids,omitempty"`
	Foreign  []int64             `json:"foreign_job_ids,omitempty"`
	Dropped  []string            `json:"dropped_settings,omitempty"`
	Drift    []string            `json:"drift,omitempty"`
	Perms    bool                `json:"permissions_changed,omitempty"`
	Schedule *deployScheduleJSON `json:"schedule,omitempty"`
}

// deployScheduleJSON is the job's schedule and why it is (un)paused.
type deployScheduleJSON struct {
	Quartz      string `json:"quartz_cron_expression"`
	Timezone    string `json:"timezone_id"`
	PauseStatus string `json:"pause_status"`
	Scheduler   string `json:"scheduler"`
	Why         string `json:"why"`
}

// Run deploys (or destroys) and prints what happened to stdout.
func (c *DeployCmd) Run(app *App) error {
	pl, err := app.buildPlan(c.Specs, c.Pipeline, c.Target, nil)
	if err != nil {
		return err
	}
	if pl.Target.Executor != spec.ExecutorDatabricks {
		return invalidf("target %s of pipeline %s runs on executor %q; pipectl deploy deploys to Databricks targets (%s)",
			pl.Target.Name, pl.Pipeline.Name, pl.Target.Executor, joinNames(databricksTargets(pl)))
	}
	if err := app.checkDeployable(pl, c.Destroy); err != nil {
		return err
	}
	d := &databricks.Deployer{Env: app.Getenv, Stderr: app.Stderr}
	var out *databricks.Outcome
	if c.Destroy {
		out, err = d.Destroy(app.Ctx, pl, c.DryRun)
	} else {
		out, err = d.Deploy(app.Ctx, pl, databricks.DeployOptions{ProjectRoot: app.Root, GitCommit: app.gitCommit(), DryRun: c.DryRun})
	}
	if err != nil {
		verb := "deploy"
		if c.Destroy {
			verb = "destroy"
		}
		return fmt.Errorf("%s %s on target %s: %w", verb, pl.Pipeline.Name, pl.Target.Name, err)
	}
	if c.JSON {
		return writeDeployJSON(app.Stdout, pl, out)
	}
	// Where it went is a log line: stdout stays the same for any workspace.
	fmt.Fprintf(app.Stderr, "pipectl: workspace %s\n", out.Host)
	writeDeployText(app.Stdout, out)
	return nil
}

func databricksTargets(pl *plan.Plan) []string {
	var names []string
	for _, n := range pl.Pipeline.TargetNames() {
		if pl.Pipeline.Targets[n].Executor == spec.ExecutorDatabricks {
			names = append(names, n)
		}
	}
	return names
}

// checkDeployable validates the target's databricks block, the
// environment it needs and the notebooks before anything is read or
// changed remotely; problems are diagnostics (exit 2).
func (a *App) checkDeployable(pl *plan.Plan, destroy bool) error {
	cfg, err := databricks.ParseConfig(pl.Target.Config(databricks.Name))
	if err != nil {
		return invalidf("%v", err)
	}
	var notebooks []string
	for _, name := range pl.Order() {
		st := pl.Stages[name]
		if st.Executor != databricks.Name && !destroy {
			return invalidf("stage %s runs on executor %q on target %s; a deployed Databricks job can only run databricks stages",
				name, st.Executor, pl.Target.Name)
		}
		notebooks = append(notebooks, st.Notebook)
	}
	field := fmt.Sprintf("%s.targets.%s.databricks", pl.Pipeline.Path, pl.Target.Name)
	if destroy {
		// Only the workspace matters: no notebooks, and no git URL or
		// commit (the job is found by name and key, not by its source).
		notebooks = nil
		cfg.Source = databricks.Source{Kind: databricks.SourceWorkspace}
	}
	ds := cfg.Validate(databricks.Env(a.Getenv), field, a.Root, notebooks)
	for i := range ds {
		if !ds[i].Pos.IsValid() {
			ds[i].Pos = pl.Target.Pos // the executor knows fields, not positions
		}
	}
	a.printDiagnostics(ds)
	if ds.HasErrors() {
		fmt.Fprintf(a.Stderr, "pipectl: cannot deploy %s to %s: %s\n", pl.Pipeline.Name, pl.Target.Name, ds.Summary())
		return alreadyPrinted(exitInvalid)
	}
	return nil
}

// gitCommit is the commit being deployed: $GITHUB_SHA in GitHub Actions,
// else the project's HEAD, else unknown.
func (a *App) gitCommit() string {
	if sha := a.Getenv("GITHUB_SHA"); sha != "" {
		return sha
	}
	out, err := exec.CommandContext(a.Ctx, "git", "-C", a.Root, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func writeDeployText(w io.Writer, o *databricks.Outcome) {
	row := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	if o.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	switch code := o.Code; {
	case code.Git != nil:
		row("code", "git %s at %s", code.Git.URL, code.Git.Ref())
	case code.Folder != "" && code.Present:
		row("code", "%s (already there)", code.Folder)
	case code.Folder != "" && o.DryRun:
		row("code", "would import %d files into %s", code.Files, code.Folder)
	case code.Folder != "":
		row("code", "imported %d files into %s", code.Files, code.Folder)
	}
	switch wh := o.Wheel; {
	case wh.Path == "":
	case wh.Present:
		row("wheel", "%s (already there)", wh.Path)
	case o.DryRun:
		row("wheel", "would upload %s (%d bytes) to %s", wh.File, wh.Bytes, path.Dir(wh.Path))
	default:
		row("wheel", "uploaded %s (%d bytes) to %s", wh.File, wh.Bytes, path.Dir(wh.Path))
	}
	job := fmt.Sprintf("%q", o.Name)
	if o.JobID != 0 {
		job += fmt.Sprintf(" (job %d)", o.JobID)
	}
	would := func(verb string) string {
		if o.DryRun {
			return "would " + verb
		}
		return map[string]string{"create": "created", "update": "updated", "delete": "deleted"}[verb]
	}
	switch o.Action {
	case "create":
		if o.DryRun {
			row("job", "would create %s with these settings:", job)
			fmt.Fprintln(w, o.Settings)
		} else {
			row("job", "created %s", job)
		}
	case "update":
		row("job", "%s %s:", would("update"), job)
		fmt.Fprint(w, o.Diff)
		if len(o.Dropped) > 0 {
			row("note", "the update also removes settings made outside pipectl: %s", strings.Join(o.Dropped, ", "))
		}
	case "unchanged":
		row("job", "%s is up to date", job)
	}
	for _, k := range o.Drift {
		if o.DryRun {
			row("drift", "%s: changed in the workspace since the last deploy; this deploy overwrites it", k)
		} else {
			row("drift", "%s: changed in the workspace since the last deploy; overwritten", k)
		}
	}
	if o.Permissions {
		if o.DryRun {
			row("access", "would set the job's permissions to the spec's")
		} else {
			row("access", "set the job's permissions to the spec's")
		}
	}
	switch o.Action {
	case "delete":
		for _, id := range o.Removed {
			row("job", "%s job %d %q", would("delete"), id, o.Name)
		}
	case "absent":
		row("job", "%q does not exist; nothing to delete", o.Name)
	}
	if o.Action != "delete" {
		for _, id := range o.Removed {
			if o.DryRun {
				row("duplicate", "would delete job %d, a duplicate of job %d", id, o.JobID)
			} else {
				row("duplicate", "deleted job %d, a duplicate of job %d", id, o.JobID)
			}
		}
	}
	// Whether the schedule runs is the point of most deploys: say it even
	// when the job is unchanged.
	if sc := o.Schedule; sc != nil {
		row("schedule", "%s %s, %s (%s)", sc.QuartzCronExpression, sc.TimezoneId, sc.PauseStatus, o.PauseWhy)
	}
	for _, id := range o.Foreign {
		row("note", "job %d is also named %q but pipectl does not manage it (no matching %s tag); left alone", id, o.Name, databricks.KeyTag)
	}
}

func writeDeployJSON(w io.Writer, pl *plan.Plan, o *databricks.Outcome) error {
	out := deployJSON{Pipeline: pl.Pipeline.Name, Target: pl.Target.Name, Host: o.Host, DryRun: o.DryRun, Action: o.Action,
		JobID: o.JobID, JobName: o.Name, Diff: o.Diff, Removed: o.Removed, Foreign: o.Foreign, Dropped: o.Dropped,
		Drift: o.Drift, Perms: o.Permissions}
	if o.Code.Folder != "" || o.Code.Git != nil {
		code := map[string]any{}
		if o.Code.Git != nil {
			code["git_url"], code["git_ref"] = o.Code.Git.URL, o.Code.Git.Ref()
		} else {
			code["folder"], code["files"], code["imported"], code["present"] = o.Code.Folder, o.Code.Files, o.Code.Imported, o.Code.Present
		}
		out.Code = code
	}
	if wh := o.Wheel; wh.Path != "" {
		out.Wheel = map[string]any{"path": wh.Path, "bytes": wh.Bytes, "uploaded": wh.Uploaded, "present": wh.Present}
	}
	if o.Settings != "" {
		out.Settings = json.RawMessage(o.Settings)
	}
	if sc := o.Schedule; sc != nil {
		out.Schedule = &deployScheduleJSON{Quartz: sc.QuartzCronExpression, Timezone: sc.TimezoneId,
			PauseStatus: string(sc.PauseStatus), Scheduler: o.Scheduler, Why: o.PauseWhy}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
