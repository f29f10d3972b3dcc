package main

import (
	"context"
	"os"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/plugins/local"
	"github.com/pipectl/pipectl/plugins/noop"
)

// builtinExecutors are the executors compiled into pipectl. Each is meant to
// be reached through the plugin protocol: pipectl re-executes itself with a
// hidden command that serves one of them, so built-ins and third-party
// plugins take the same path.
var builtinExecutors = map[string]func() executor.Executor{
	noop.Name: noop.New,
	local.Name: func() executor.Executor {
		return local.New(local.Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(), Version: version})
	},
}

// newRegistry returns the executors this process can use, by name.
//
// TODO(plugin protocol): serve built-ins through a self-exec'd go-plugin
// process and add discovered pipectl-executor-* binaries. Until then the
// built-ins run in process.
func (a *App) newRegistry() *executor.Registry {
	reg := executor.NewRegistry()
	for name, f := range builtinExecutors {
		f := f
		reg.Register(name, "built-in", func(ctx context.Context) (executor.Executor, error) { return f(), nil })
	}
	return reg
}
