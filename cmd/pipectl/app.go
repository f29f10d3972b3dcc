package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/spec"
)

// Exit codes: stable, documented in the README.
const (
	exitOK        = 0
	exitRunFailed = 1
	exitInvalid   = 2 // invalid spec or usage
)

// exitError carries an exit code up to run. When printed is true the
// message was already shown to the user.
type exitError struct {
	code    int
	err     error
	printed bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// ExitCode implements kong.ExitCoder.
func (e *exitError) ExitCode() int { return e.code }

// invalidf is a usage or spec error (exit 2).
func invalidf(format string, args ...any) error {
	return &exitError{code: exitInvalid, err: fmt.Errorf(format, args...)}
}

// alreadyPrinted returns an error that only sets the exit code.
func alreadyPrinted(code int) error { return &exitError{code: code, printed: true} }

// App holds what every command needs: the streams and the project.
type App struct {
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
	// Root is the project root: -C or the working directory.
	Root string
	// State is --state-dir (absolute), or "" for Root/.pipectl.
	State string
	// Getenv reads the environment (tests may replace it).
	Getenv func(string) string
	// Registry holds the executors; built on first use, closed by run.
	Registry *executor.Registry
	// Verbose (run -v) asks the built-in executors' notebooks for their
	// libraries' own messages too (verboseEnv).
	Verbose bool
}

// verboseEnv is set to 1 in the environment of built-in executors, and so
// of their notebooks, by `pipectl run -v`: the notebooks then keep
// MLflow's own messages (docs/STAGES.md, "Verbosity").
const verboseEnv = "PIPECTL_VERBOSE"

// loadProject loads the spec packages at paths (default specs/), prints
// every diagnostic to stderr, and fails with exit 2 when there is an error.
func (a *App) loadProject(paths []string) (*spec.Project, error) {
	return a.loadProjectWith(paths, spec.Options{})
}

// loadProjectWith is loadProject with options beyond the root and the
// executors (validate checks every target's local inputs).
func (a *App) loadProjectWith(paths []string, opts spec.Options) (*spec.Project, error) {
	opts.Root, opts.Executors = a.Root, a.knownExecutor
	proj, ds := spec.Load(paths, opts)
	a.printDiagnostics(ds)
	if ds.HasErrors() {
		fmt.Fprintf(a.Stderr, "pipectl: specs are invalid: %s\n", ds.Summary())
		return nil, alreadyPrinted(exitInvalid)
	}
	return proj, nil
}

// printDiagnostics writes diagnostics with paths relative to the working
// directory, as compilers do.
func (a *App) printDiagnostics(ds diag.Diagnostics) {
	wd, err := os.Getwd()
	if err != nil {
		wd = a.Root
	}
	diag.Render(a.Stderr, ds, wd)
}

// pipeline loads the project and returns one pipeline by name.
func (a *App) pipeline(specs []string, name string) (*spec.Project, *spec.Pipeline, error) {
	proj, err := a.loadProject(specs)
	if err != nil {
		return nil, nil, err
	}
	p := proj.Pipelines[name]
	if p == nil {
		return nil, nil, invalidf("no pipeline %q in %s (pipelines: %s)", name, specsLabel(specs), joinNames(proj.Names()))
	}
	return proj, p, nil
}

// knownExecutor reports whether an executor name is available to specs:
// a built-in or a discovered plugin.
func (a *App) knownExecutor(name string) bool {
	if name == spec.ExecutorLocal || name == spec.ExecutorDatabricks {
		return true
	}
	return a.registry().Has(name)
}

// registry returns the executor registry, building it on first use.
func (a *App) registry() *executor.Registry {
	if a.Registry == nil {
		a.Registry = a.newRegistry()
	}
	return a.Registry
}

func specsLabel(specs []string) string {
	if len(specs) == 0 {
		return spec.DefaultDir + string(filepath.Separator)
	}
	return fmt.Sprint(specs)
}

func joinNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	out := names[0]
	for _, n := range names[1:] {
		out += ", " + n
	}
	return out
}

// errorCode maps an error returned by a command to an exit code, printing
// it unless it was printed already.
func (a *App) errorCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.printed && ee.err != nil {
			fmt.Fprintf(a.Stderr, "pipectl: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(a.Stderr, "pipectl: %v\n", err)
	return exitRunFailed
}
