package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
)

// PipelinesCmd lists pipelines.
type PipelinesCmd struct {
	SpecFlags
	JSON bool `name:"json" help:"Print JSON instead of a table."`
}

type pipelineRow struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Schedule    string `json:"schedule,omitempty"`
	// Scheduler is set with Schedule: the system that triggers it.
	Scheduler string   `json:"scheduler,omitempty"`
	Targets   []string `json:"targets"`
	Default   string   `json:"default_target"`
	Stages    int      `json:"stages"`
}

// Run prints one row per pipeline, sorted by name.
func (c *PipelinesCmd) Run(app *App) error {
	proj, err := app.loadProject(c.Specs)
	if err != nil {
		return err
	}
	var rows []pipelineRow
	for _, n := range proj.Names() {
		p := proj.Pipelines[n]
		row := pipelineRow{
			Name: n, Description: p.Description, Schedule: p.Schedule,
			Targets: p.TargetNames(), Default: p.DefaultTarget, Stages: len(p.Stages),
		}
		if p.Schedule != "" {
			row.Scheduler = p.Scheduler
		}
		rows = append(rows, row)
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTAGES\tSCHEDULE (UTC)\tSCHEDULER\tTARGETS\tDESCRIPTION")
	for _, r := range rows {
		sched, scheduler := r.Schedule, r.Scheduler
		if sched == "" {
			sched, scheduler = "-", "-"
		}
		targets := make([]string, len(r.Targets))
		for i, t := range r.Targets {
			targets[i] = t
			if t == r.Default {
				targets[i] = t + "*"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Name, r.Stages, sched, scheduler, strings.Join(targets, ","), r.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(app.Stdout, "(* default target)")
	return nil
}
