package main

import (
	"fmt"
)

// GraphCmd prints a pipeline's stage graph.
type GraphCmd struct {
	SpecFlags
	Pipeline string `arg:"" help:"Pipeline name."`
	Target   string `short:"t" help:"Target (default: the pipeline's default_target); target overrides can add references."`
	Format   string `short:"f" enum:"mermaid,dot" default:"mermaid" help:"Output format: mermaid or dot."`
}

// Run prints the graph to stdout.
func (c *GraphCmd) Run(app *App) error {
	pl, err := app.buildPlan(c.Specs, c.Pipeline, c.Target, nil)
	if err != nil {
		return err
	}
	switch c.Format {
	case "dot":
		fmt.Fprint(app.Stdout, pl.Graph.DOT(pl.Pipeline.Name, nil))
	default:
		fmt.Fprint(app.Stdout, pl.Graph.Mermaid(nil))
	}
	return nil
}
