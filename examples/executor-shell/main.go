// Command pipectl-executor-shell is an example third-party executor: it
// runs a shell command for each stage, taken from the target's config:
//
//	targets: dev: {
//		executor: "shell"
//		config: command: "echo $PIPECTL_STAGE with c=$PIPECTL_PARAM_C"
//		config: commands: data: "./fetch.sh" // a command for one stage
//	}
//
// Parameters arrive as PIPECTL_PARAM_<NAME>; a line "key=value" appended to
// the file $PIPECTL_OUTPUTS becomes an output of the stage. It is a module
// of its own, built against this checkout (docs/PLUGINS.md); install it with
// cd examples/executor-shell && go build -o ../../.pipectl/plugins/pipectl-executor-shell .
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/plugin"
)

func main() {
	plugin.Serve(&plugin.FuncExecutor{
		Info:         executor.Info{Name: "shell", Version: "0.1.0", Description: "runs a shell command per stage"},
		ValidateFunc: validate,
		RunFunc:      run,
	})
}

type config struct {
	Command  string            `json:"command"`
	Commands map[string]string `json:"commands"`
}

func commandFor(raw json.RawMessage, stage string) string {
	var c config
	_ = json.Unmarshal(raw, &c)
	if cmd, ok := c.Commands[stage]; ok {
		return cmd
	}
	return c.Command
}

func validate(_ context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	var ds diag.Diagnostics
	for _, st := range req.Stages {
		if commandFor(req.Config, st.Name) == "" {
			ds = append(ds, diag.Errorf(diag.Pos{}, "targets."+req.Target+".config.command", "no command for stage %q", st.Name).
				WithFix("set config.command, or config.commands.%s", st.Name))
		}
	}
	return ds, nil
}

func run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	outputs, err := os.CreateTemp("", "pipectl-outputs-")
	if err != nil {
		return executor.Result{}, err
	}
	outputs.Close()
	defer os.Remove(outputs.Name())

	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", commandFor(task.Config, task.Stage))
	cmd.Dir = task.ProjectRoot
	cmd.Env = append(os.Environ(), "PIPECTL_STAGE="+task.Stage, "PIPECTL_PIPELINE="+task.Pipeline,
		"PIPECTL_RUN_ID="+task.RunID, fmt.Sprint("PIPECTL_ATTEMPT=", task.Attempt), "PIPECTL_OUTPUTS="+outputs.Name())
	for k, v := range task.Params {
		cmd.Env = append(cmd.Env, "PIPECTL_PARAM_"+strings.ToUpper(k)+"="+v)
	}
	// A process group of its own: cancelling the stage kills the command and
	// everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout, stderr := plugin.NewLogWriter(sink, "stdout"), plugin.NewLogWriter(sink, "stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // nothing it left behind outlives the stage
	}
	stdout.Flush()
	stderr.Flush()
	switch {
	case ctx.Err() != nil:
		return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled: " + context.Cause(ctx).Error()}}, nil
	case err != nil:
		return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "command failed: " + err.Error()}}, nil
	}
	res := executor.Result{Status: executor.Succeeded, Outputs: map[string]string{}}
	b, _ := os.ReadFile(outputs.Name())
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			res.Outputs[k] = v
		}
	}
	return res, nil
}
