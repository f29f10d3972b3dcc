package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
	"github.com/pipectl/pipectl/plugins/databricks"
	"github.com/pipectl/pipectl/plugins/local"
	"github.com/pipectl/pipectl/plugins/noop"
)

// builtinExecutors are the executors compiled into pipectl. pipectl never
// calls them in process: it re-executes itself with the hidden command
// `pipectl __executor NAME` (ExecutorCmd), which serves one of them over
// the plugin protocol, so built-ins and third-party plugins take the same
// path (gRPC, cancellation, crash handling).
var builtinExecutors = map[string]func() executor.Executor{
	noop.Name:       noop.New,
	databricks.Name: func() executor.Executor { return databricks.New(os.Getenv) },
	local.Name: func() executor.Executor {
		return local.New(local.Options{Python: os.Getenv("PIPECTL_PYTHON"), Environ: os.Environ(),
			NoWorker: os.Getenv("PIPECTL_LOCAL_WORKER") == "0"})
	},
}

// executorCommand is the hidden command that serves a built-in executor.
const executorCommand = "__executor"

// sourceBuiltin is the registry source of built-in executors.
const sourceBuiltin = "built-in"

// defaultLogLevel keeps pipectl quiet unless something goes wrong; set
// PIPECTL_LOG_LEVEL=debug (or trace) to see plugin start-up and their logs.
const defaultLogLevel = "warn"

func builtinNames() []string {
	names := make([]string, 0, len(builtinExecutors))
	for n := range builtinExecutors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// newRegistry returns every executor this process can use, by name,
// without starting any: built-ins, then third-party plugins discovered by
// file name (plugin.Discover). Each is started on first use through
// go-plugin. A plugin installed in a .pipectl/plugins directory under a
// built-in's name replaces the built-in, with a warning.
func (a *App) newRegistry() *executor.Registry {
	reg := executor.NewRegistry()
	for _, name := range builtinNames() {
		reg.Register(name, sourceBuiltin, func(ctx context.Context) (executor.Executor, error) {
			cfg, err := a.builtinConfig(name)
			if err != nil {
				return nil, err
			}
			return plugin.Start(ctx, cfg)
		})
	}
	for _, c := range a.discoverPlugins() {
		if !c.Usable() {
			continue // `pipectl executors` says why
		}
		if c.Overrides {
			fmt.Fprintf(a.Stderr, "pipectl: warning: executor %q: using %s instead of the built-in\n", c.Name, a.displayPath(c.Path))
		}
		reg.Register(c.Name, c.Path, func(ctx context.Context) (executor.Executor, error) {
			return plugin.Start(ctx, a.pluginConfig(ctx, c))
		})
	}
	return reg
}

// discoverPlugins lists third-party executor candidates by file name.
func (a *App) discoverPlugins() []plugin.Candidate {
	return plugin.Discover(plugin.DiscoverOptions{
		ProjectRoot: a.Root,
		Home:        a.Getenv("HOME"),
		PATH:        a.Getenv("PATH"),
		Builtins:    builtinNames(),
	})
}

// builtinConfig starts a built-in: this very binary, as found by
// os.Executable. Symlinks are deliberately not resolved: testscript runs a
// copy of the test binary under the command's name and dispatches on it.
// Built-ins are part of pipectl and inherit its environment (credentials
// included).
func (a *App) builtinConfig(name string) (plugin.Config, error) {
	exe, err := os.Executable()
	if err != nil {
		return plugin.Config{}, fmt.Errorf("find the pipectl binary to serve executor %q: %w", name, err)
	}
	env := []string{plugin.EnvLogLevel + "=" + a.logLevel()}
	if a.Verbose {
		env = append(env, verboseEnv+"=1")
	}
	return plugin.Config{
		Name:   name,
		Path:   exe,
		Args:   []string{executorCommand, name},
		Env:    env,
		Logger: a.hostLogger(),
	}, nil
}

// pluginConfig starts a third-party executor: isolated from the host's
// environment except for the allow-list and the target's pass_env
// (carried by ctx, see plugin.WithPassEnv), pinned to its SHA256SUMS
// checksum when there is one, over mutually authenticated TLS.
func (a *App) pluginConfig(ctx context.Context, c plugin.Candidate) plugin.Config {
	env := plugin.PluginEnv(os.Environ(), plugin.PassEnv(ctx))
	return plugin.Config{
		Name:     c.Name,
		Path:     c.Path,
		Isolated: true,
		Env:      append(env, plugin.EnvLogLevel+"="+a.logLevel()),
		Checksum: c.Checksum,
		AutoMTLS: true,
		Logger:   a.hostLogger(),
	}
}

// logLevel is the user's log level (PIPECTL_LOG_LEVEL), default warn.
func (a *App) logLevel() string {
	lvl := strings.ToLower(strings.TrimSpace(a.Getenv(plugin.EnvLogLevel)))
	if hclog.LevelFromString(lvl) == hclog.NoLevel {
		return defaultLogLevel
	}
	return lvl
}

// hostLogger logs to stderr at the user's level; plugin clients name it
// after their executor.
func (a *App) hostLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "pipectl", Output: a.Stderr, Level: hclog.LevelFromString(a.logLevel())})
}

// displayPath shows a path relative to the project root, or under ~, when
// it is there.
func (a *App) displayPath(p string) string {
	if rel, err := filepath.Rel(a.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	if home := a.Getenv("HOME"); home != "" {
		if rel, err := filepath.Rel(home, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join("~", rel)
		}
	}
	return p
}

// stopExecutorPlugins kills every plugin process still running. run calls
// it exactly once, on every exit path, after the registry closed its
// executors gracefully.
func stopExecutorPlugins() { goplugin.CleanupClients() }
