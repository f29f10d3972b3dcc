package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/executor/executortest"
)

// TestExitValueContract checks the runner's exit value file against the
// table every executor shares (plugins/databricks has the same test).
func TestExitValueContract(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	for name, tc := range executortest.ExitValueCases() {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "result.json")
			if err := os.WriteFile(out, []byte(tc.Exit), 0o600); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var warnings []string
			sink := func(ev executor.Event) {
				mu.Lock()
				defer mu.Unlock()
				if ev.Kind == executor.EventLog {
					warnings = append(warnings, strings.TrimPrefix(ev.Text, "pipectl: "))
				}
			}
			task := executor.Task{Stage: "s", Type: "custom", Notebook: "notebooks/x.py", Outputs: tc.Promised}
			res := e.succeeded(context.Background(), task, out, nil, sink)
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
