package main

import (
	"path/filepath"
	"testing"
)

// TestInitThenRun is a new team's first hour: `pipectl init` in an empty
// directory, then `pipectl run sentiment` there with the local executor (a
// real venv, MLflow server and registry) succeeds, and a second run is
// fully cached. The output of init itself is the init.txtar golden.
func TestInitThenRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sentiment notebooks (skipped with -short)")
	}
	parent := t.TempDir()
	if r := runPipectl(t, parent, "init", "project"); r.code != 0 {
		t.Fatalf("init exited %d\n%s", r.code, r.stderr)
	}
	project := filepath.Join(parent, "project")
	state := filepath.Join(project, ".pipectl")
	sharedVenv(t, project, state)

	first := runPipectl(t, project, "run", "sentiment", "--json")
	if first.code != 0 {
		t.Fatalf("first run exited %d\nstderr:\n%s", first.code, tail(first.stderr, 60))
	}
	got := finished(t, first.stdout)
	if len(got) != 6 {
		t.Errorf("first run finished %d stages, want 6: %v", len(got), got)
	}
	for stage, status := range got {
		if status != "succeeded" {
			t.Errorf("first run: stage %s %s", stage, status)
		}
	}
	second := runPipectl(t, project, "run", "sentiment", "--json")
	if second.code != 0 {
		t.Fatalf("second run exited %d\nstderr:\n%s", second.code, tail(second.stderr, 40))
	}
	for stage, status := range finished(t, second.stdout) {
		if status != "cached" {
			t.Errorf("second run: stage %s %s, want cached", stage, status)
		}
	}
}
