package databricks

import (
	"strings"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/executor/executortest"
)

// TestExitValueContract checks the exit value of runs/get-output against
// the table every executor shares (plugins/local has the same test).
func TestExitValueContract(t *testing.T) {
	c := &Client{red: newRedactor(func(string) string { return "" })}
	for name, tc := range executortest.ExitValueCases() {
		t.Run(name, func(t *testing.T) {
			var warnings []string
			emit := func(kind executor.EventKind, text string) {
				warnings = append(warnings, strings.TrimPrefix(text, "pipectl: "))
			}
			task := executor.Task{Stage: "s", Type: "custom", Notebook: "notebooks/x.py", Outputs: tc.Promised}
			res := (&Executor{}).succeed(c, task, executor.Result{},
				&jobs.RunOutput{NotebookOutput: &jobs.NotebookOutput{Result: tc.Exit}}, emit)
			if tc.Error != "" {
				if res.Status != executor.Failed || !strings.Contains(res.Error.Message, tc.Error) {
					t.Fatalf("got %s %+v, want a failure saying %q", res.Status, res.Error, tc.Error)
				}
				return
			}
			want := executor.Result{Status: executor.Succeeded, Outputs: tc.Outputs, Metrics: tc.Metrics}
			if d := cmp.Diff(want, res, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("wrong result (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.Warnings, warnings, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("wrong warnings (-want +got):\n%s", d)
			}
		})
	}
}
