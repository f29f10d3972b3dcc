package noop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
)

// Name is the executor's name in specs.
const Name = "noop"

// Executor is the noop executor.
type Executor struct {
	// Version is reported by Describe.
	Version string
}

var _ executor.Executor = (*Executor)(nil)

// New returns a noop executor.
func New() executor.Executor { return &Executor{Version: "builtin"} }

// Describe implements executor.Executor.
func (e *Executor) Describe(ctx context.Context) (executor.Info, error) {
	return executor.Info{Name: Name, Version: e.Version, Protocol: executor.ProtocolVersion,
		Description: "runs nothing; every stage succeeds with placeholder outputs"}, nil
}

// Validate implements executor.Executor: there is nothing to check.
func (e *Executor) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	return nil, nil
}

// Run implements executor.Executor.
func (e *Executor) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: "stdout",
		Text: fmt.Sprintf("noop: %s attempt %d", task.Stage, task.Attempt)})
	if d, err := time.ParseDuration(task.Params["noop_sleep"]); err == nil && d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled"}}, nil
		}
	}
	switch task.Params["noop_fail"] {
	case "true":
		return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "noop_fail is set"}}, nil
	case "retryable":
		return executor.Result{Status: executor.Failed, Error: &executor.Failure{Message: "noop_fail is retryable", Retryable: true}}, nil
	}
	outputs := map[string]string{}
	// Placeholders for the outputs the stage promises, so references resolve.
	for _, k := range task.Outputs {
		outputs[k] = fmt.Sprintf("noop-%s-%s", task.Stage, k)
	}
	for k, v := range task.Params {
		if len(k) > len("noop_output_") && k[:len("noop_output_")] == "noop_output_" {
			outputs[k[len("noop_output_"):]] = v
		}
	}
	return executor.Result{Status: executor.Succeeded, Outputs: outputs}, nil
}

// CheckOutputs implements executor.Executor: noop outputs always "exist".
func (e *Executor) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	return executor.CheckResult{Exists: true}, nil
}

// Fingerprint implements executor.Fingerprinter: a file input that exists
// here is its content's SHA-256 (relative paths are relative to the
// project root), one that does not is "absent" (noop reads nothing, so
// nothing it would read changed); a model reference is itself, as noop
// has no registry.
func (e *Executor) Fingerprint(ctx context.Context, req executor.FingerprintRequest) (executor.FingerprintResult, error) {
	digests := cache.DigestsIn(req.Task.StateDir)
	if req.Task.StateDir == "" {
		digests = &cache.Digests{}
	}
	var out executor.FingerprintResult
	for _, in := range req.Inputs {
		f := executor.Fingerprint{Param: in.Param, Value: "ref:" + in.Ref}
		if in.Kind == executor.InputFile {
			p := in.Ref
			if !filepath.IsAbs(p) {
				p = filepath.Join(req.Task.ProjectRoot, filepath.FromSlash(p))
			}
			f.Value = "absent"
			if _, err := os.Stat(p); err == nil {
				sum, detail, err := digests.Sum(p)
				if err != nil {
					return executor.FingerprintResult{}, err
				}
				f.Value, f.Detail = sum, detail
			}
		}
		out.Fingerprints = append(out.Fingerprints, f)
	}
	return out, nil
}
