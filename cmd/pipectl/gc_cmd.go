package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/pipectl/pipectl/internal/gc"
	"github.com/pipectl/pipectl/plugins/local"
)

// GcCmd prunes the state directory and the local data and prediction
// roots (internal/gc has the rules).
type GcCmd struct {
	DryRun    bool   `name:"dry-run" help:"List what would be deleted, with sizes, and delete nothing."`
	KeepRuns  int    `name:"keep-runs" default:"20" placeholder:"N" help:"Keep each pipeline's N newest runs."`
	OlderThan string `name:"older-than" default:"30d" placeholder:"AGE" help:"Keep runs younger than AGE (30d, 36h)."`
	JSON      bool   `name:"json" help:"Print JSON instead of a table."`
}

// gcOutput is `pipectl gc --json`.
type gcOutput struct {
	DryRun bool      `json:"dry_run"`
	Items  []gc.Item `json:"items"`
	Bytes  int64     `json:"total_bytes"`
	// Freed is what a real run deleted; absent in a dry run.
	Freed *int64 `json:"freed_bytes,omitempty"`
}

// Run scans, prints the items and, unless --dry-run, deletes them.
func (c *GcCmd) Run(app *App) error {
	if c.KeepRuns < 0 {
		return invalidf("--keep-runs %d: want 0 or more", c.KeepRuns)
	}
	age, err := gc.ParseAge(c.OlderThan)
	if err != nil {
		return invalidf("--older-than: %v", err)
	}
	now, _, err := app.clock()
	if err != nil {
		return err
	}
	state := app.stateDir()
	champions, err := local.Champions(app.Ctx, state)
	if err != nil {
		return fmt.Errorf("%w; gc deletes nothing it cannot prove unused", err)
	}
	var pins []gc.Pin
	for _, ch := range champions {
		pins = append(pins, gc.Pin{Why: fmt.Sprintf("%s@%s (version %d)", ch.Model, ch.Alias, ch.Version),
			RunID: ch.RunID, DataName: ch.DataName, DataVersion: ch.DataVersion})
	}
	in := gc.Inputs{
		StateDir:    state,
		DataRoots:   []string{filepath.Join(app.Root, ".pipectl", "data")},
		OutputRoots: []string{filepath.Join(app.Root, ".pipectl", "predictions")},
		Pins:        pins,
		Policy:      gc.Policy{KeepRuns: c.KeepRuns, OlderThan: age, Now: now()},
	}
	if venv, err := local.CurrentVenv(app.Ctx, local.VenvOptions{ProjectRoot: app.Root, StateDir: state,
		Python: app.Getenv("PIPECTL_PYTHON"), Environ: os.Environ()}); err == nil {
		in.CurrentVenvs = []string{filepath.Base(venv)}
		// The Spark engine's venv is current too, when the project has one.
		if spark, err := local.CurrentVenv(app.Ctx, local.VenvOptions{ProjectRoot: app.Root, StateDir: state,
			Python: app.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Spark: true}); err == nil {
			in.CurrentVenvs = append(in.CurrentVenvs, filepath.Base(spark))
		}
	} else {
		fmt.Fprintf(app.Stderr, "pipectl: keeping every venv: %v\n", err)
	}
	plan, err := gc.Scan(in)
	if err != nil {
		return err
	}
	for _, n := range plan.Notes {
		fmt.Fprintf(app.Stderr, "pipectl: %s\n", n)
	}
	out := gcOutput{DryRun: c.DryRun, Items: plan.Items, Bytes: plan.Bytes}
	if out.Items == nil {
		out.Items = []gc.Item{}
	}
	if !c.DryRun {
		freed, err := plan.Apply()
		out.Freed = &freed
		if err != nil {
			if errors.Is(err, gc.ErrRunStarted) {
				return fmt.Errorf("%w; nothing was deleted", err)
			}
			fmt.Fprintf(app.Stderr, "pipectl: %v\n", err)
			defer func() { fmt.Fprintf(app.Stderr, "pipectl: gc freed %s, not all it meant to\n", humanBytes(freed)) }()
			c.print(app, out)
			return alreadyPrinted(exitRunFailed)
		}
	}
	c.print(app, out)
	switch {
	case len(out.Items) == 0:
		fmt.Fprintln(app.Stderr, "pipectl: nothing to delete")
	case c.DryRun:
		fmt.Fprintf(app.Stderr, "pipectl: gc would free %s in %d items (dry run: nothing deleted)\n", humanBytes(out.Bytes), len(out.Items))
	default:
		fmt.Fprintf(app.Stderr, "pipectl: gc freed %s in %d items\n", humanBytes(*out.Freed), len(out.Items))
	}
	return nil
}

func (c *GcCmd) print(app *App, out gcOutput) {
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	if len(out.Items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tBYTES\tPATH\tWHY")
	for _, it := range out.Items {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", it.Kind, it.Bytes, app.displayPath(it.Path), it.Why)
	}
	fmt.Fprintf(tw, "total\t%d\t%d items (%s)\n", out.Bytes, len(out.Items), humanBytes(out.Bytes))
	tw.Flush()
}

// humanBytes prints a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
