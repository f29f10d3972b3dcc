package plugin_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
)

// An executor is a value with the four methods of executor.Executor; main
// serves it. Built as pipectl-executor-echo and installed in
// .pipectl/plugins, it runs the stages of targets with executor: "echo".
func ExampleServe() {
	plugin.Serve(&plugin.FuncExecutor{
		Info: executor.Info{Name: "echo", Version: "1.0.0"},
		RunFunc: func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
			sink(executor.Event{Kind: executor.EventLog, Stream: "stdout", Text: "hello from " + task.Stage})
			return executor.Result{Status: executor.Succeeded}, nil
		},
	})
}

// FuncExecutor fills in what a small executor does not need: Describe adds
// the protocol version, Validate accepts every target, and CheckOutputs
// says outputs cannot be checked (so nothing is served from the cache on
// trust).
func ExampleFuncExecutor() {
	e := &plugin.FuncExecutor{
		Info: executor.Info{Name: "echo", Version: "1.0.0"},
		RunFunc: func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
			return executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"greeting": "hello " + task.Params["who"]}}, nil
		},
	}
	ctx := context.Background()
	info, _ := e.Describe(ctx)
	res, _ := e.Run(ctx, executor.Task{Stage: "greet", Params: map[string]string{"who": "world"}}, func(executor.Event) {})
	check, _ := e.CheckOutputs(ctx, executor.CheckRequest{})
	fmt.Printf("%s %s, protocol %d\n", info.Name, info.Version, info.Protocol)
	fmt.Println(res.Status, res.Outputs["greeting"])
	fmt.Println(check.Exists, check.Reason)
	// Output:
	// echo 1.0.0, protocol 1
	// succeeded hello world
	// false executor "echo" cannot check outputs
}

// LogWriter turns a process's output into one log event per line.
func ExampleLogWriter() {
	sink := func(e executor.Event) { fmt.Printf("%s: %s\n", e.Stream, e.Text) }
	stdout := plugin.NewLogWriter(sink, "stdout")
	cmd := exec.Command("/bin/sh", "-c", "echo epoch 1; echo epoch 2; printf done")
	cmd.Stdout = stdout
	_ = cmd.Run()
	stdout.Flush() // the last line had no newline
	// Output:
	// stdout: epoch 1
	// stdout: epoch 2
	// stdout: done
}

// Third-party executors see only allow-listed variables and those their
// target passes (pass_env).
func ExamplePluginEnv() {
	host := []string{"PATH=/usr/bin", "HOME=/home/ci", "LC_ALL=C.UTF-8", "DATABRICKS_TOKEN=dapi123", "HF_TOKEN=hf_abc"}
	fmt.Println(strings.Join(plugin.PluginEnv(host, []string{"HF_TOKEN"}), "\n"))
	// Output:
	// PATH=/usr/bin
	// HOME=/home/ci
	// LC_ALL=C.UTF-8
	// HF_TOKEN=hf_abc
}
