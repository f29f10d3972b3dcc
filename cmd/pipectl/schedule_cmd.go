package main

import (
	"encoding/json"
	"fmt"

	"github.com/pipectl/pipectl/engine/schedule"
	"github.com/pipectl/pipectl/engine/spec"
)

// ScheduleCmd prints a pipeline's schedule as GitHub Actions or Databricks
// cron. The spec is the one source of truth; workflows and deployed jobs
// are checked against what this prints.
type ScheduleCmd struct {
	SpecFlags
	Pipeline string `arg:"" help:"Pipeline name."`
	Format   string `short:"f" enum:"github,quartz" default:"github" help:"github: the 5-field UTC cron for on.schedule.cron; quartz: the Databricks quartz_cron_expression and timezone_id, separated by a tab."`
	JSON     bool   `name:"json" help:"Print every rendering as JSON (--format is ignored)."`
}

type scheduleJSON struct {
	Pipeline string `json:"pipeline"`
	GitHub   string `json:"github"`
	Quartz   string `json:"quartz"`
	Timezone string `json:"timezone"`
	// Scheduler is the system that triggers the schedule (the spec's
	// scheduler): "github" or "databricks".
	Scheduler string `json:"scheduler"`
}

// schedulerText says who triggers a scheduled pipeline's runs; target,
// when set, narrows it to one target.
func schedulerText(p *spec.Pipeline, target *spec.Target) string {
	if p.Scheduler != spec.SchedulerDatabricks {
		return fmt.Sprintf("scheduler %s: a GitHub workflow cron runs pipectl run; the job pipectl deploy creates keeps the schedule paused", p.Scheduler)
	}
	const job = "scheduler databricks: the schedule of the job pipectl deploy creates"
	switch {
	case target == nil:
		return job + ", unpaused on production targets; no workflow cron"
	case target.Executor == spec.ExecutorDatabricks && target.Mode == "production":
		return job + ", unpaused on this production target"
	}
	return fmt.Sprintf("%s, on production targets (not on this %s target)", job, target.Mode)
}

// Run prints the schedule. A pipeline without a schedule is a usage error
// (exit 2), so that `cron=$(pipectl schedule P)` never yields an empty
// cron silently.
func (c *ScheduleCmd) Run(app *App) error {
	proj, p, err := app.pipeline(c.Specs, c.Pipeline)
	if err != nil {
		return err
	}
	if p.Schedule == "" {
		var scheduled []string
		for _, n := range proj.Names() {
			if proj.Pipelines[n].Schedule != "" {
				scheduled = append(scheduled, n)
			}
		}
		return invalidf("pipeline %q has no schedule (scheduled pipelines: %s); to schedule it, set schedule: \"MIN HOUR DOM MON DOW\" (UTC) in its spec",
			p.Name, joinNames(scheduled))
	}
	// The spec loader validated the expression; parse again to render it.
	s, err := schedule.Parse(p.Schedule)
	if err != nil {
		return invalidf("pipeline %q: %v", p.Name, err)
	}
	quartz, err := s.Quartz()
	if err != nil {
		return invalidf("pipeline %q: %v", p.Name, err)
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(scheduleJSON{Pipeline: p.Name, GitHub: s.GitHub(), Quartz: quartz, Timezone: schedule.Timezone, Scheduler: p.Scheduler})
	}
	// stdout is the cron alone, for $(pipectl schedule P); who triggers it
	// is for the reader.
	fmt.Fprintf(app.Stderr, "pipectl: %s: %s\n", p.Name, schedulerText(p, nil))
	switch c.Format {
	case "quartz":
		fmt.Fprintf(app.Stdout, "%s\t%s\n", quartz, schedule.Timezone)
	default:
		fmt.Fprintln(app.Stdout, s.GitHub())
	}
	return nil
}
