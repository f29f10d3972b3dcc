package databricks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/service/jobs"

	"github.com/pipectl/pipectl/engine/executor"
)

// environmentKey names the one serverless environment of a run or job.
const environmentKey = "pipectl"

// codeLocation says where Databricks finds the notebooks: an imported code
// folder or a git source.
type codeLocation struct {
	// Folder is the code folder (API path) of a workspace source.
	Folder string
	Git    *GitSource
}

// projectRoot is the project_root context parameter: the imported folder
// as notebooks see it. A git checkout's path is not known in advance;
// notebooks then find the root from their own location (empty = not set).
func (l codeLocation) projectRoot() string {
	if l.Folder == "" {
		return ""
	}
	return fusePath(l.Folder)
}

func (l codeLocation) notebookTask(rel string, params map[string]string) (*jobs.NotebookTask, error) {
	if l.Git != nil {
		// Relative to the repository's root: it must stay inside it.
		p, err := inside("/", strings.TrimSuffix(filepath.ToSlash(rel), ".py"))
		if err != nil {
			return nil, fmt.Errorf("notebook %s: %w", rel, err)
		}
		return &jobs.NotebookTask{NotebookPath: p[1:], Source: jobs.SourceGit, BaseParameters: params}, nil
	}
	p, err := notebookPath(l.Folder, rel)
	if err != nil {
		return nil, fmt.Errorf("notebook %s: %w", rel, err)
	}
	return &jobs.NotebookTask{NotebookPath: p, Source: jobs.SourceWorkspace, BaseParameters: params}, nil
}

func (l codeLocation) gitSource() *jobs.GitSource {
	if l.Git == nil {
		return nil
	}
	return &jobs.GitSource{GitUrl: l.Git.URL, GitProvider: jobs.GitProvider(l.Git.Provider), GitCommit: l.Git.Commit,
		GitBranch: l.Git.Branch, GitTag: l.Git.Tag}
}

// place is where a target runs stages: the context parameters the task
// does not carry (executor.ContextParams).
func place(c *Config, projectRoot string) executor.Place {
	vol := c.VolumeRoot()
	return executor.Place{DataRoot: vol + "/data", OutputRoot: vol + "/predictions", ProjectRoot: projectRoot,
		TrackingURI: "databricks", RegistryURI: "databricks-uc",
		ExperimentRoot: c.ExperimentRoot, Catalog: c.Catalog, Schema: c.Schema}
}

// idempotencyToken identifies one attempt of one stage of one pipectl run:
// a retried submit call returns the run the first call started.
func idempotencyToken(runID, stage string, attempt int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%d", runID, stage, attempt)))
	return hex.EncodeToString(sum[:])[:64]
}

func timeoutSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// submitRequest is the one-time run of one stage attempt.
type submitRequest struct {
	cfg      *Config
	loc      codeLocation
	reqs     []string
	pipeline string
	target   string
	stage    string
	notebook string
	params   map[string]string
	runID    string
	attempt  int
	timeout  time.Duration
	commit   string
}

// stageTask is the task of one stage in a submitted run, alone or in a
// group: its notebook with the stage's and the context parameters, its
// timeout and the target's compute.
func stageTask(cfg *Config, loc codeLocation, reqs []string, t executor.Task) (jobs.SubmitTask, error) {
	nt, err := loc.notebookTask(t.Notebook, executor.NotebookParams(t, place(cfg, loc.projectRoot())))
	if err != nil {
		return jobs.SubmitTask{}, err
	}
	task := jobs.Task{TaskKey: t.Stage, NotebookTask: nt, TimeoutSeconds: timeoutSeconds(t.Timeout)}
	NewComputeSpec(cfg, reqs).ApplySubmit(&task)
	var st jobs.SubmitTask
	if err := convertJSON(task, &st); err != nil {
		return jobs.SubmitTask{}, err
	}
	return st, nil
}

func (s submitRequest) build() (jobs.SubmitRun, error) {
	st, err := stageTask(s.cfg, s.loc, s.reqs, executor.Task{RunID: s.runID, Pipeline: s.pipeline, Target: s.target,
		Stage: s.stage, Notebook: s.notebook, Params: s.params, GitCommit: s.commit, Timeout: s.timeout})
	if err != nil {
		return jobs.SubmitRun{}, err
	}
	return jobs.SubmitRun{
		RunName:          s.cfg.NamePrefix() + fmt.Sprintf("pipectl %s/%s on %s, run %s, attempt %d", s.pipeline, s.stage, s.target, s.runID, s.attempt),
		Tasks:            []jobs.SubmitTask{st},
		GitSource:        s.loc.gitSource(),
		Environments:     NewComputeSpec(s.cfg, s.reqs).Environments(),
		IdempotencyToken: idempotencyToken(s.runID, s.stage, s.attempt),
		TimeoutSeconds:   timeoutSeconds(s.timeout),
		Queue:            &jobs.QueueSettings{Enabled: true},
	}, nil
}

// convertJSON copies between SDK types that share JSON fields (Task and
// SubmitTask).
func convertJSON(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
