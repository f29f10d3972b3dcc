package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	project "github.com/pipectl/pipectl"
	"github.com/pipectl/pipectl/internal/inspect"
	"github.com/pipectl/pipectl/internal/scaffold"
)

// InitCmd scaffolds a project from the shipped template: the example
// specs, the notebooks and their packages, the sample data, a README.
type InitCmd struct {
	Dir   string `arg:"" optional:"" default:"." help:"Directory of the new project (created if needed; default: the working directory)."`
	Force bool   `help:"Write into a non-empty directory, replacing files of the same names."`
	Data  string `placeholder:"FILE" help:"Point the data stage at FILE (a CSV), with the columns and encoding pipectl data inspect finds."`
}

// Run writes the project and lists the files written on stdout.
func (c *InitCmd) Run(app *App) error {
	dir := c.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(app.Root, dir)
	}
	var opts scaffold.Options
	opts.Force = c.Force
	if c.Data != "" {
		file, err := filepath.Abs(c.Data)
		if err != nil {
			return err
		}
		rep, err := inspect.File(file)
		if err != nil {
			return invalidf("--data %v", err)
		}
		for _, p := range rep.Problems {
			if p.Error {
				fmt.Fprintf(app.Stderr, "pipectl: %s: %s\n", c.Data, p.Message)
			}
		}
		if rep.HasErrors() {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--data %s: the data stage would refuse this file as it is (pipectl data inspect %s says more)", c.Data, c.Data)}
		}
		opts.Data = rep.DataParams(scaffold.Rel(dir, file), inspect.DataName(file))
	}
	files, err := scaffold.Write(dir, project.Template, opts)
	if errors.Is(err, scaffold.ErrNotEmpty) {
		return invalidf("%s: %v", c.Dir, err)
	}
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(app.Stdout, filepath.Join(c.Dir, filepath.FromSlash(f)))
	}
	fmt.Fprintf(app.Stderr, "pipectl: wrote a project in %s; next: cd %s && pipectl run sentiment\n", c.Dir, inspect.ShellQuote(c.Dir))
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		fmt.Fprintf(app.Stderr, "pipectl: (git init there to keep it under version control; .gitignore leaves out .pipectl/)\n")
	}
	return nil
}
