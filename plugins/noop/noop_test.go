package noop

import (
	"context"
	"testing"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
)

func TestRun(t *testing.T) {
	e := New()
	sink := func(executor.Event) {}
	tests := map[string]struct {
		params map[string]string
		typ    string
		// promised are the task's outputs (the stage type's, from the plan).
		promised []string
		status   executor.Status
		retry    bool
		output   [2]string
	}{
		"train outputs":  {typ: "train", promised: []string{"model_name", "model_uri"}, status: executor.Succeeded, output: [2]string{"model_uri", "noop-s-model_uri"}},
		"custom output":  {typ: "custom", params: map[string]string{"noop_output_x": "1"}, status: executor.Succeeded, output: [2]string{"x", "1"}},
		"fail":           {params: map[string]string{"noop_fail": "true"}, status: executor.Failed},
		"retryable fail": {params: map[string]string{"noop_fail": "retryable"}, status: executor.Failed, retry: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := e.Run(context.Background(), executor.Task{Stage: "s", Type: tc.typ, Params: tc.params, Outputs: tc.promised, Attempt: 1}, sink)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tc.status {
				t.Fatalf("status %s, want %s", res.Status, tc.status)
			}
			if tc.status == executor.Failed && res.Error.Retryable != tc.retry {
				t.Errorf("retryable %v, want %v", res.Error.Retryable, tc.retry)
			}
			if tc.output[0] != "" && res.Outputs[tc.output[0]] != tc.output[1] {
				t.Errorf("output %s = %q, want %q", tc.output[0], res.Outputs[tc.output[0]], tc.output[1])
			}
		})
	}
}

func TestSleepHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res, err := New().Run(ctx, executor.Task{Params: map[string]string{"noop_sleep": "1h"}}, func(executor.Event) {})
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("got %v, %v; want cancelled", res.Status, err)
	}
}
