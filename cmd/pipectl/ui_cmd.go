package main

import (
	"fmt"
	"os"

	"github.com/pipectl/pipectl/plugins/local"
)

// UICmd serves the MLflow UI on the local executor's store, in the
// foreground, until Ctrl-C.
type UICmd struct {
	Port int `default:"5000" help:"Port on 127.0.0.1 (links in run summaries assume 5000)."`
}

// Validate checks the port.
func (c *UICmd) Validate() error {
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("--port %d: must be between 1 and 65535", c.Port)
	}
	return nil
}

// Run builds the venv if needed, starts the MLflow server on the store
// (<state dir>/mlflow) and waits for Ctrl-C.
func (c *UICmd) Run(app *App) error {
	store := local.NewStore(app.stateDir()).Dir
	return local.ServeUI(app.Ctx, local.UIOptions{
		ProjectRoot: app.Root,
		StateDir:    app.stateDir(),
		Python:      app.Getenv("PIPECTL_PYTHON"),
		Environ:     os.Environ(),
		Port:        c.Port,
		Progress:    func(line string) { fmt.Fprintf(app.Stderr, "pipectl: %s\n", line) },
		Ready: func(url string) {
			fmt.Fprintf(app.Stderr, "pipectl: MLflow UI at %s (store %s); Ctrl-C stops it\n", url, app.displayPath(store))
		},
	})
}
