package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
	"github.com/pipectl/pipectl/plugins/noop"
)

// Dispatch overhead of one stage through the plugin protocol (goal: at
// most 20 ms), against the same Run called in process. Run with
//
//	go test ./cmd/pipectl -run '^$' -bench 'Dispatch|PluginStart' -count 5

func benchApp(b *testing.B) *App {
	return &App{Ctx: context.Background(), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Root: b.TempDir(), Getenv: os.Getenv}
}

var benchTask = executor.Task{RunID: "r", Pipeline: "p", Target: "local", Stage: "train", Type: "train", Attempt: 1,
	Params: map[string]string{"model_type": "logistic_regression", "data_path": "/data/v1"}}

// BenchmarkDispatchNoop runs a noop stage through a running
// `pipectl __executor noop` process: gRPC stream, one log event, result.
func BenchmarkDispatchNoop(b *testing.B) {
	cfg, err := benchApp(b).builtinConfig(noop.Name)
	if err != nil {
		b.Fatal(err)
	}
	c, err := plugin.Start(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	sink := func(executor.Event) {}
	for b.Loop() {
		res, err := c.Run(ctx, benchTask, sink)
		if err != nil || res.Status != executor.Succeeded {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkDispatchNoopInProcess is the baseline: the same Run, no plugin.
func BenchmarkDispatchNoopInProcess(b *testing.B) {
	e := noop.New()
	ctx := context.Background()
	sink := func(executor.Event) {}
	for b.Loop() {
		if res, err := e.Run(ctx, benchTask, sink); err != nil || res.Status != executor.Succeeded {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkPluginStartBuiltin starts a built-in (self-exec, handshake,
// Describe) and shuts it down: paid once per executor per pipectl run.
func BenchmarkPluginStartBuiltin(b *testing.B) {
	cfg, err := benchApp(b).builtinConfig(noop.Name)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := plugin.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkPluginStartThirdParty starts examples/executor-shell as a
// third-party plugin: isolated environment and AutoMTLS.
func BenchmarkPluginStartThirdParty(b *testing.B) {
	app := benchApp(b)
	path := filepath.Join(plugin.PluginDir(app.Root), plugin.BinaryPrefix+"shell")
	if err := copyExecutable(shellExecutor(b), path); err != nil {
		b.Fatal(err)
	}
	cfg := app.pluginConfig(context.Background(), plugin.Candidate{Name: "shell", Path: path})
	for b.Loop() {
		c, err := plugin.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
