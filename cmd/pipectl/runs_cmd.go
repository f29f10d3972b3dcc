package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pipectl/pipectl/engine/record"
)

// RunsCmd lists runs or shows one.
type RunsCmd struct {
	List RunsListCmd `cmd:"" default:"withargs" help:"List runs, newest first."`
	Show RunsShowCmd `cmd:"" help:"Show one run: stages, models, champion, predictions, links, failure."`
}

// RunsListCmd lists runs.
type RunsListCmd struct {
	Pipeline string `name:"pipeline" short:"p" placeholder:"NAME" help:"Only runs of this pipeline."`
	Limit    int    `name:"limit" default:"20" help:"Show at most this many runs (0: all)."`
	JSON     bool   `name:"json" help:"Print JSON instead of a table."`
}

// runRow is one run in `pipectl runs --json`.
type runRow struct {
	ID         string                `json:"id"`
	Pipeline   string                `json:"pipeline"`
	Target     string                `json:"target"`
	Status     record.Status         `json:"status"`
	StartedAt  time.Time             `json:"started_at"`
	EndedAt    time.Time             `json:"ended_at,omitzero"`
	DurationMS int64                 `json:"duration_ms"`
	Stages     map[record.Status]int `json:"stages"`
	Error      *record.RunError      `json:"error,omitempty"`
}

// Run prints the runs.
func (c *RunsListCmd) Run(app *App) error {
	recs, err := app.records()
	if err != nil {
		return err
	}
	runs, errs := recs.List()
	for _, err := range errs {
		fmt.Fprintf(app.Stderr, "pipectl: warning: %v\n", err)
	}
	slices.Reverse(runs)
	rows := []runRow{}
	for _, r := range runs {
		if c.Pipeline != "" && r.Pipeline != c.Pipeline {
			continue
		}
		if c.Limit > 0 && len(rows) == c.Limit {
			break
		}
		status := r.Effective()
		counts := r.Counts()
		if status == record.Interrupted && counts[record.Running] > 0 {
			counts[record.Interrupted] += counts[record.Running]
			delete(counts, record.Running)
		}
		rows = append(rows, runRow{ID: r.ID, Pipeline: r.Pipeline, Target: r.Target, Status: status, StartedAt: r.StartedAt,
			EndedAt: r.EndedAt, DurationMS: r.DurationMS, Stages: counts, Error: r.Error})
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(app.Stderr, "pipectl: no runs yet (pipectl run PIPELINE starts one)")
		return nil
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tTARGET\tSTATUS\tSTARTED (UTC)\tDURATION\tSTAGES")
	for _, r := range rows {
		dur := "-"
		if r.Status.Final() && r.Status != record.Interrupted {
			dur = fmtElapsed(time.Duration(r.DurationMS) * time.Millisecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Target, r.Status,
			r.StartedAt.UTC().Format("2006-01-02 15:04:05"), dur, stageCounts(r.Stages))
	}
	return tw.Flush()
}

// stageCounts says "4 succeeded, 1 failed, 1 skipped" in a fixed order.
func stageCounts(c map[record.Status]int) string {
	var parts []string
	for _, s := range []record.Status{record.Succeeded, record.Cached, record.Running, record.Failed, record.Cancelled,
		record.Interrupted, record.Skipped, record.Pending, record.Excluded} {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// RunsShowCmd shows one run.
type RunsShowCmd struct {
	RunID string `arg:"" name:"run-id" help:"Run id, a unique prefix of one, or 'latest'."`
	JSON  bool   `name:"json" help:"Print the run record (run.json) instead."`
}

// Run prints the run.
func (c *RunsShowCmd) Run(app *App) error {
	rec, err := app.loadRun(c.RunID)
	if err != nil {
		return err
	}
	if eff := rec.Effective(); eff != rec.Status {
		rec.MarkInterrupted(rec.StartedAt) // shown, not saved
	}
	if c.JSON {
		b, err := record.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = app.Stdout.Write(b)
		return err
	}
	w := app.Stdout
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", rec.ID)
	fmt.Fprintf(tw, "pipeline\t%s\n", rec.Pipeline)
	fmt.Fprintf(tw, "target\t%s (executor %s)\n", rec.Target, rec.Executor)
	fmt.Fprintf(tw, "status\t%s\n", rec.Status)
	fmt.Fprintf(tw, "started\t%s\n", rec.StartedAt.UTC().Format(time.RFC3339))
	if !rec.EndedAt.IsZero() {
		fmt.Fprintf(tw, "ended\t%s\n", rec.EndedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "spec\t%s\n", shortHash(rec.SpecHash))
	fmt.Fprintf(tw, "commit\t%s\n", orDash(rec.GitCommit))
	fmt.Fprintf(tw, "pipectl\t%s\n", rec.PipectlVersion)
	if opts := fmtRunOptions(rec.Options); opts != "" {
		fmt.Fprintf(tw, "options\t%s\n", opts)
	}
	if n := len(rec.Sessions); n > 1 {
		fmt.Fprintf(tw, "sessions\t%d (resumed %d %s)\n", n, n-1, pluralize(n-1, "time"))
	}
	tw.Flush()
	fmt.Fprintln(w)
	summarize(rec).writeText(w)
	return nil
}

func fmtRunOptions(o record.Options) string {
	var parts []string
	for _, s := range o.Sets {
		parts = append(parts, "--set "+s)
	}
	for _, s := range o.Only {
		parts = append(parts, "--only "+s)
	}
	if o.From != "" {
		parts = append(parts, "--from "+o.From)
	}
	if o.NoCache {
		parts = append(parts, "--no-cache")
	}
	if o.Parallelism > 0 {
		parts = append(parts, fmt.Sprintf("--parallelism %d", o.Parallelism))
	}
	return strings.Join(parts, " ")
}

// loadRun resolves what the user typed and loads the run (exit 2 when
// there is no such run).
func (a *App) loadRun(ref string) (*record.Run, error) {
	recs, err := a.records()
	if err != nil {
		return nil, err
	}
	id, err := recs.Resolve(ref, "")
	if err != nil {
		return nil, invalidf("%v", err)
	}
	rec, err := recs.Load(id)
	if errors.Is(err, record.ErrNotFound) {
		return nil, invalidf("%v", err)
	}
	return rec, err
}
