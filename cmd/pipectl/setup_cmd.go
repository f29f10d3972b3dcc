package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pipectl/pipectl/engine/spec"
	"github.com/pipectl/pipectl/plugins/databricks"
)

// SetupCmd provisions what a Databricks target's runs need and pipectl
// does not create as it goes: the Unity Catalog schema and Volume, and
// the raw data files in the Volume. Idempotent: run it as often as you
// like.
type SetupCmd struct {
	SpecFlags
	Pipeline  string   `arg:"" optional:"" help:"Pipeline whose target to set up (default: every pipeline with the target)."`
	Target    string   `short:"t" required:"" help:"Databricks target to set up."`
	Upload    []string `placeholder:"FILE[=DEST]" help:"Upload FILE into the target's Volume at DEST (relative to the Volume, or a /Volumes path inside it; default raw/<file name>). Repeatable."`
	Overwrite bool     `help:"Replace an uploaded file that exists with another size."`
	DryRun    bool     `name:"dry-run" help:"Report what exists and what would be created or uploaded; change nothing."`
	JSON      bool     `name:"json" help:"Print the outcome as JSON."`
}

// Run sets the target up and prints what exists and what was done.
func (c *SetupCmd) Run(app *App) error {
	proj, err := app.loadProject(c.Specs)
	if err != nil {
		return err
	}
	names := proj.Names()
	if c.Pipeline != "" {
		if proj.Pipelines[c.Pipeline] == nil {
			return invalidf("no pipeline %q in %s (pipelines: %s)", c.Pipeline, specsLabel(c.Specs), joinNames(names))
		}
		names = []string{c.Pipeline}
	}
	// The pipelines' blocks of the target, once per distinct place.
	var cfgs []*databricks.Config
	var seen []string
	var others []string
	for _, name := range names {
		t := proj.Pipelines[name].Targets[c.Target]
		if t == nil {
			continue
		}
		if t.Executor != spec.ExecutorDatabricks {
			others = append(others, name)
			continue
		}
		cfg, err := databricks.ParseConfig(t.Config(databricks.Name))
		if err != nil {
			return invalidf("pipeline %s, target %s: %v", name, c.Target, err)
		}
		ds := cfg.Validate(databricks.Env(app.Getenv), fmt.Sprintf("%s.targets.%s.databricks", proj.Pipelines[name].Path, c.Target), app.Root, nil)
		for i := range ds {
			if !ds[i].Pos.IsValid() {
				ds[i].Pos = t.Pos
			}
		}
		if ds.HasErrors() {
			app.printDiagnostics(ds)
			fmt.Fprintf(app.Stderr, "pipectl: cannot set up %s: %s\n", c.Target, ds.Summary())
			return alreadyPrinted(exitInvalid)
		}
		key := strings.Join([]string{cfg.Host, cfg.Profile, cfg.Catalog, cfg.Schema, cfg.Volume, fmt.Sprint(cfg.PerUser, cfg.PerUserSchema)}, "|")
		if !slices.Contains(seen, key) {
			seen = append(seen, key)
			cfgs = append(cfgs, cfg)
		}
	}
	switch {
	case len(cfgs) == 0 && len(others) > 0:
		return invalidf("target %s runs on executor %q; pipectl setup sets up Databricks targets", c.Target, proj.Pipelines[others[0]].Targets[c.Target].Executor)
	case len(cfgs) == 0:
		return invalidf("no pipeline in %s has a target %q", specsLabel(c.Specs), c.Target)
	case len(cfgs) > 1 && len(c.Upload) > 0:
		return invalidf("the pipelines' %s targets use %d different Volumes: name the pipeline whose Volume gets the upload", c.Target, len(cfgs))
	}
	var uploads []databricks.Upload
	for _, u := range c.Upload {
		local, dest, _ := strings.Cut(u, "=")
		if local == "" {
			return invalidf("--upload %q: name a file, e.g. --upload data/financial_news.csv=raw/financial_news.csv", u)
		}
		abs, err := filepath.Abs(local) // like data inspect: relative to the working directory
		if err != nil {
			return err
		}
		if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
			if err == nil {
				return invalidf("--upload %s: a directory; name a file", local)
			}
			return invalidf("--upload %s: %v", local, unwrapPathError(err))
		}
		uploads = append(uploads, databricks.Upload{Local: abs, Dest: dest})
	}
	d := &databricks.Deployer{Env: app.Getenv}
	var outs []*databricks.SetupOutcome
	for _, cfg := range cfgs {
		out, err := d.Setup(app.Ctx, cfg, databricks.SetupOptions{DryRun: c.DryRun, Overwrite: c.Overwrite, Uploads: uploads})
		if err != nil {
			return fmt.Errorf("setup %s: %w", c.Target, err)
		}
		outs = append(outs, out)
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"target": c.Target, "dry_run": c.DryRun, "workspaces": outs})
	}
	for _, out := range outs {
		fmt.Fprintf(app.Stderr, "pipectl: workspace %s\n", out.Host)
		writeSetupText(app.Stdout, out)
	}
	return nil
}

func writeSetupText(w io.Writer, o *databricks.SetupOutcome) {
	if o.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	for _, s := range o.Steps {
		var what string
		switch s.Action {
		case "exists":
			what = "exists"
		case "created":
			what = "created"
		case "create":
			what = "would be created"
		case "uploaded":
			what = fmt.Sprintf("uploaded (%d bytes)", s.Bytes)
		case "upload":
			what = fmt.Sprintf("would be uploaded (%d bytes)", s.Bytes)
		case "present":
			what = fmt.Sprintf("already there (%d bytes, same size)", s.Bytes)
		}
		fmt.Fprintf(w, "%-10s %s %s\n", s.Kind, s.Name, what)
	}
}
