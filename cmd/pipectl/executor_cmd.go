package main

import (
	"github.com/pipectl/pipectl/engine/plugin"
)

// ExecutorCmd serves a built-in executor over the plugin protocol: pipectl
// starts itself with it (see newRegistry). It must print nothing to stdout
// before the handshake, so it only logs, to stderr.
type ExecutorCmd struct {
	Name string `arg:"" help:"Built-in executor to serve."`
}

// Run serves until pipectl shuts the executor down. It deliberately ignores
// app.Ctx: a Ctrl-C reaches the whole process group, and stages must stop
// when pipectl cancels them (so that it can record them), not on their own.
func (c *ExecutorCmd) Run(app *App) error {
	newExecutor, ok := builtinExecutors[c.Name]
	if !ok {
		return invalidf("no built-in executor %q (built-ins: %s)", c.Name, joinNames(builtinNames()))
	}
	if !plugin.LaunchedByPipectl(app.Getenv) {
		return invalidf("pipectl %s serves a built-in executor to pipectl itself over the plugin protocol; it is not meant to be run by hand", executorCommand)
	}
	return plugin.ServeWithOptions(newExecutor(), plugin.ServeOptions{
		Logger: plugin.NewLogger(app.Stderr, app.Getenv(plugin.EnvLogLevel)),
		Getenv: app.Getenv,
	})
}
