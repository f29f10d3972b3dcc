package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/pipectl/pipectl/engine/plugin"
)

// ExecutorsCmd lists executors: the built-ins and every third-party
// candidate found, each started once to ask its version and protocol, or
// the reason it cannot be used.
type ExecutorsCmd struct {
	JSON bool `name:"json" help:"Print JSON instead of a table."`
}

// Executor statuses in listings.
const (
	statusOK         = "ok"
	statusIgnored    = "ignored"
	statusError      = "error"
	statusOverridden = "overridden"
)

type executorRow struct {
	Name string `json:"name"`
	// Source is "built-in", or where a plugin was found: "project"
	// (.pipectl/plugins), "user" (~/.pipectl/plugins) or "PATH".
	Source      string `json:"source"`
	Path        string `json:"path,omitempty"`
	Version     string `json:"version,omitempty"`
	Protocol    int    `json:"protocol,omitempty"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
}

// inspectTimeout bounds the start-up of each executor listed.
const inspectTimeout = 15 * time.Second

// Run prints one row per executor and candidate: built-ins by name, then
// plugins in discovery order.
func (c *ExecutorsCmd) Run(app *App) error {
	ctx := app.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	candidates := app.discoverPlugins()
	overriddenBy := map[string]string{}
	for _, cand := range candidates {
		if cand.Usable() && cand.Overrides {
			overriddenBy[cand.Name] = app.displayPath(cand.Path)
		}
	}
	var rows []executorRow
	for _, name := range builtinNames() {
		row := executorRow{Name: name, Source: sourceBuiltin}
		if by, ok := overriddenBy[name]; ok {
			row.Status, row.Reason = statusOverridden, "replaced by "+by
		} else {
			cfg, err := app.builtinConfig(name)
			if err == nil {
				cfg.StartTimeout = inspectTimeout
				err = row.inspect(ctx, cfg)
			}
			row.fail(err)
		}
		rows = append(rows, row)
	}
	for _, cand := range candidates {
		row := executorRow{Name: cand.Name, Source: string(cand.Origin), Path: cand.Path}
		if !cand.Usable() {
			row.Status, row.Reason = statusIgnored, string(cand.Problem)+": "+cand.Reason
		} else {
			cfg := app.pluginConfig(ctx, cand)
			cfg.StartTimeout = inspectTimeout
			row.fail(row.inspect(ctx, cfg))
		}
		rows = append(rows, row)
	}
	if c.JSON {
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tSOURCE\tSTATUS")
	for _, r := range rows {
		source := r.Source
		if r.Path != "" {
			source = app.displayPath(r.Path)
		}
		status := r.Status
		if r.Reason != "" {
			status += " (" + r.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", orDash(r.Name), orDash(r.Version), orDash(protocolLabel(r.Protocol)), source, status)
	}
	return tw.Flush()
}

// inspect starts the executor once and records what it describes.
func (r *executorRow) inspect(ctx context.Context, cfg plugin.Config) error {
	info, err := plugin.Inspect(ctx, cfg)
	if err != nil {
		return err
	}
	r.Version, r.Protocol, r.Description, r.Status = info.Version, info.Protocol, info.Description, statusOK
	return nil
}

// fail records why an executor could not be started.
func (r *executorRow) fail(err error) {
	if err == nil {
		return
	}
	r.Status, r.Reason = statusError, err.Error()
	var se *plugin.StartError
	if errors.As(err, &se) {
		r.Reason = string(se.Problem) + ": " + se.Reason
	}
}

func protocolLabel(p int) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
