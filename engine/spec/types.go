package spec

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
)

// TypeCustom is the stage type that runs any notebook with free-form
// parameters and the outputs it declares. The other stage types are the
// schema's (#StageTypes in schemas/stages.cue, [Schema.StageTypes]): the
// engine applies their table and knows none of them by name.
const TypeCustom = "custom"

// Built-in executor names.
const (
	ExecutorLocal      = "local"
	ExecutorDatabricks = "databricks"
)

// Schedulers: the system that triggers a pipeline's schedule (the
// pipeline's scheduler field).
const (
	// SchedulerGitHub: a workflow cron runs `pipectl run`; the deployed
	// Databricks job's schedule stays paused.
	SchedulerGitHub = "github"
	// SchedulerDatabricks: the schedule of the job `pipectl deploy`
	// creates, unpaused on production targets.
	SchedulerDatabricks = "databricks"
)

// Project is every pipeline found in the loaded spec packages.
type Project struct {
	// Root is the project root: relative paths in specs (notebooks, local
	// data roots, sources) are relative to it.
	Root      string
	Pipelines map[string]*Pipeline
	// Files are the spec files that were loaded, sorted.
	Files []string
}

// Names returns the pipeline names, sorted.
func (p *Project) Names() []string {
	return slices.Sorted(mapsKeys(p.Pipelines))
}

// Pipeline is one validated pipeline.
type Pipeline struct {
	Name        string
	Description string
	// Schedule is a 5-field UTC cron expression, or empty.
	Schedule string
	// Scheduler is the system that triggers Schedule: SchedulerGitHub (the
	// default) or SchedulerDatabricks.
	Scheduler     string
	DefaultTarget string
	Tags          map[string]string
	Targets       map[string]*Target
	Stages        map[string]*Stage
	// Hash identifies the pipeline's evaluated spec (sha256 of its JSON).
	Hash string
	// Path is the field path of the pipeline, e.g. pipelines.demo.
	Path string
	Pos  diag.Pos
	// root is the project root, against which local input paths are
	// checked (Options.Root).
	root string
}

// TargetNames returns the target names, sorted.
func (p *Pipeline) TargetNames() []string { return slices.Sorted(mapsKeys(p.Targets)) }

// StageNames returns the stage names, sorted.
func (p *Pipeline) StageNames() []string { return slices.Sorted(mapsKeys(p.Stages)) }

// Target is where a pipeline runs.
type Target struct {
	Name     string
	Executor string
	// Mode is "development" or "production".
	Mode string
	// Configs holds the configuration block of each executor the target
	// configures: "local", "databricks", or "config" for a plugin executor,
	// as JSON objects with schema defaults applied.
	Configs map[string]json.RawMessage
	// Stages are per-target stage overrides, by stage name.
	Stages map[string]*StageOverride
	// PassEnv names the environment variables passed to third-party
	// executor plugins of this target (pass_env).
	PassEnv []string
	Path    string
	Pos     diag.Pos
}

// Config returns the configuration the target gives executor: its named
// block for built-ins, the "config" block for plugins, or nil.
func (t *Target) Config(executor string) json.RawMessage {
	if c, ok := t.Configs[executor]; ok {
		return c
	}
	if executor != ExecutorLocal && executor != ExecutorDatabricks {
		return t.Configs["config"]
	}
	return nil
}

// StageOverride changes one stage on one target.
type StageOverride struct {
	// Params as written, replacing the stage's key by key.
	Params   map[string]any
	Retries  *int
	Timeout  *time.Duration
	Executor string
	// ParamPos is where each overriding parameter was written.
	ParamPos map[string]diag.Pos
	Path     string
	Pos      diag.Pos
}

// Stage is one node of a pipeline's DAG, as written in the spec.
type Stage struct {
	Name     string
	Type     string
	Notebook string
	// Needs are the explicit dependencies; references and stage lists add
	// more (see Pipeline.Graph).
	Needs        []string
	Retries      int
	RetryBackoff time.Duration
	Timeout      time.Duration
	// Executor overrides the target's executor when set.
	Executor string
	// Outputs are the outputs the stage produces: per type, or declared by a
	// custom stage.
	Outputs []string
	// Inputs maps the parameters that name inputs (files, registered
	// models) to their kind: the type's (#StageTypes[type].inputs) and
	// those the stage declares.
	Inputs map[string]string
	// StageLists are the parameters that list other stages (per type,
	// #StageTypes): dependencies whose output the notebook receives.
	StageLists map[string]StageList
	// Params are the parameters as written (JSON values: string,
	// json.Number, bool, nil, []any, map[string]any), without schema
	// defaults. Plans apply target overrides, --set values and defaults.
	Params map[string]any
	// ParamPos is where each parameter was written.
	ParamPos map[string]diag.Pos
	Path     string
	Pos      diag.Pos
}

func mapsKeys[M ~map[string]V, V any](m M) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
