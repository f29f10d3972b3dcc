package main

import (
	"fmt"
	"strings"

	"github.com/pipectl/pipectl/engine/spec"
)

// ValidateCmd checks spec packages.
type ValidateCmd struct {
	Paths []string `arg:"" optional:"" name:"path" help:"Spec directories or .cue files (default: specs/)."`
}

// Run prints every problem to stderr (exit 2) or a one-line summary to
// stdout.
func (c *ValidateCmd) Run(app *App) error {
	// Every target's local inputs must exist; plan and run check only the
	// target they run.
	proj, err := app.loadProjectWith(c.Paths, spec.Options{CheckInputs: true})
	if err != nil {
		return err
	}
	names := proj.Names()
	fmt.Fprintf(app.Stdout, "ok: %d %s (%s)\n", len(names), pluralize(len(names), "pipeline"), strings.Join(names, ", "))
	return nil
}

func pluralize(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
