package databricks

import (
	"slices"
	"testing"

	"github.com/databricks/databricks-sdk-go/service/jobs"
)

// TestDrift: settings changed in the workspace since the last deploy are
// listed; defaults the workspace adds inside tasks, or fills in (run_as),
// are not.
func TestDrift(t *testing.T) {
	deployed := jobs.JobSettings{Name: "j", MaxConcurrentRuns: 1, Tags: map[string]string{"pipectl_key": "k"},
		Tasks: []jobs.Task{{TaskKey: "a", NotebookTask: &jobs.NotebookTask{NotebookPath: "/x"}}}}
	last := settingsMap(deployed)
	if got := drift(nil, deployed); got != nil {
		t.Errorf("no record: drift %v, want none", got)
	}
	same := deployed
	same.Tasks = []jobs.Task{{TaskKey: "a", RunIf: jobs.RunIfAllSuccess, NotebookTask: &jobs.NotebookTask{NotebookPath: "/x", Source: jobs.SourceWorkspace}}}
	same.RunAs = &jobs.JobRunAs{UserName: "creator@example.com"}
	same.Format = jobs.FormatMultiTask
	if got := drift(last, same); len(got) != 0 {
		t.Errorf("workspace defaults: drift %v, want none", got)
	}
	changed := deployed
	changed.Tags = map[string]string{"pipectl_key": "k", "added": "by hand"}
	changed.EmailNotifications = &jobs.JobEmailNotifications{OnFailure: []string{"x@example.com"}}
	changed.MaxConcurrentRuns = 4
	if got, want := drift(last, changed), []string{"email_notifications", "max_concurrent_runs", "tags"}; !slices.Equal(got, want) {
		t.Errorf("drift %v, want %v", got, want)
	}
}
