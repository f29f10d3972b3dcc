package executor

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
)

// Executor runs stages somewhere: a local process, a Databricks job run, or
// whatever a plugin does. Every method honours ctx: when it is cancelled,
// the executor stops the work it started (kills the process group, cancels
// the remote run) before it returns.
type Executor interface {
	// Describe says who the executor is.
	Describe(ctx context.Context) (Info, error)
	// Validate checks a target's configuration and stages before anything
	// runs, e.g. that a workspace host is set. Problems are diagnostics;
	// the error is for failures to validate at all.
	Validate(ctx context.Context, req ValidateRequest) (diag.Diagnostics, error)
	// Run runs one attempt of one stage, streaming events to sink (which is
	// safe to call from any goroutine) until it returns. A stage that fails
	// is a Result with Status Failed; the error is for failures of the
	// executor itself (a crashed plugin, a broken connection).
	Run(ctx context.Context, task Task, sink EventSink) (Result, error)
	// CheckOutputs reports whether the outputs of an earlier, cached run of
	// a stage still exist (a data version directory, a registered model
	// version), so that a cache hit never points at something deleted.
	CheckOutputs(ctx context.Context, req CheckRequest) (CheckResult, error)
}

// ProtocolVersion is the executor protocol version this package describes.
// It is the major version of the gRPC package (pipectl.executor.v1).
const ProtocolVersion = 1

// Info describes an executor.
type Info struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Protocol    int    `json:"protocol"`
	Description string `json:"description,omitempty"`
	// Groups says the executor runs groups of stages as one unit
	// (GroupRunner).
	Groups bool `json:"groups,omitempty"`
}

// StageSpec is a stage as Validate sees it: parameters rendered, references
// unresolved.
type StageSpec struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Notebook string            `json:"notebook"`
	Params   map[string]string `json:"params"`
}

// ValidateRequest asks an executor to check a target before a run.
type ValidateRequest struct {
	Pipeline    string          `json:"pipeline"`
	Target      string          `json:"target"`
	ProjectRoot string          `json:"project_root"`
	Config      json.RawMessage `json:"config,omitempty"`
	Stages      []StageSpec     `json:"stages"`
}

// Task is one attempt of one stage.
type Task struct {
	// RunID identifies the pipectl run; with Stage and Attempt it makes
	// remote submissions idempotent.
	RunID    string `json:"run_id"`
	Pipeline string `json:"pipeline"`
	Target   string `json:"target"`
	Stage    string `json:"stage"`
	Type     string `json:"type"`
	// Notebook is relative to ProjectRoot.
	Notebook    string `json:"notebook"`
	ProjectRoot string `json:"project_root"`
	// Params are the stage's parameters with references substituted.
	// Executors add the context parameters ([NotebookParams]).
	Params map[string]string `json:"params"`
	// Outputs are the outputs the stage promises (its type's, or those a
	// custom stage declares): [ParseExitValue] requires them, and a stage
	// that promises any must end with an exit value.
	Outputs []string `json:"outputs,omitempty"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// Timeout bounds the attempt; zero means none. The runner also cancels
	// ctx at the deadline; remote executors pass it on (timeout_seconds).
	Timeout time.Duration `json:"timeout"`
	// Config is the target's configuration block for this executor.
	Config json.RawMessage `json:"config,omitempty"`
	// CacheKey identifies the stage's inputs.
	CacheKey string `json:"cache_key"`
	// GitCommit is the project's commit, when known.
	GitCommit string `json:"git_commit,omitempty"`
	// StateDir is the project's .pipectl directory (absolute).
	StateDir string `json:"state_dir"`
	// LogPath is where the runner keeps this attempt's log; executors may
	// ignore it (events are logged by the runner).
	LogPath string `json:"log_path,omitempty"`
}

// EventKind says what an Event carries.
type EventKind string

const (
	// EventLog is a line of output from the stage.
	EventLog EventKind = "log"
	// EventProgress is a progress message (and fraction, when known).
	EventProgress EventKind = "progress"
	// EventLink is a URL worth showing at once (a Databricks run page, an
	// MLflow run).
	EventLink EventKind = "link"
	// EventStarted says that a stage of a group started running inside
	// its unit (its task left the queue or waited for upstream tasks).
	EventStarted EventKind = "started"
	// EventUnit carries, in Text, the Unit of a group as soon as it exists
	// (before the group ends), so that an interrupted run can be repaired.
	EventUnit EventKind = "unit"
)

// Event is something an executor reports while a stage runs.
type Event struct {
	Time time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Stream is "stdout" or "stderr" for logs.
	Stream string `json:"stream,omitempty"`
	// Text is the log line or the progress message.
	Text string `json:"text,omitempty"`
	// Fraction is progress in [0, 1], or negative when unknown.
	Fraction float64 `json:"fraction,omitempty"`
	Link     *Link   `json:"link,omitempty"`
}

// Link is a labelled URL.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// EventSink receives events. Implementations must be safe for concurrent
// use.
type EventSink func(Event)

// Status is how an attempt ended.
type Status string

const (
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Result is how a stage attempt ended and what it produced.
type Result struct {
	Status  Status             `json:"status"`
	Outputs map[string]string  `json:"outputs,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Links   []Link             `json:"links,omitempty"`
	// Error says why the attempt failed or was cancelled.
	Error *Failure `json:"error,omitempty"`
}

// Failure explains a failed attempt.
type Failure struct {
	// Message is one line for people: what failed and, where known, what to
	// do.
	Message string `json:"message"`
	// Detail is the tail of a traceback or remote error trace.
	Detail string `json:"detail,omitempty"`
	// Retryable says a retry may succeed (infrastructure errors); the
	// runner never retries a failure that is not.
	Retryable bool `json:"retryable"`
	// UserError says the stage's input or parameters are at fault (bad
	// data, a wrong column name): Message says what to fix, Detail keeps
	// the traceback for the log, and resuming the same run cannot help.
	UserError bool `json:"user_error,omitempty"`
}

// CheckRequest asks whether a cached stage's outputs still exist.
type CheckRequest struct {
	Task    Task              `json:"task"`
	Outputs map[string]string `json:"outputs"`
}

// CheckResult answers a CheckRequest.
type CheckResult struct {
	Exists bool `json:"exists"`
	// Reason says what is missing, when something is.
	Reason string `json:"reason,omitempty"`
}

// Input kinds: what a stage parameter that names an input points at
// (schemas/stages.cue #Inputs, or a custom stage's inputs).
const (
	// InputFile is a file or directory: a local path, a Volume path, a
	// workspace file; whatever the executor's notebooks can open.
	InputFile = "file"
	// InputModel is a registered model: models:/NAME@ALIAS,
	// models:/NAME/latest, models:/NAME/VERSION or runs:/ID/model.
	InputModel = "model"
)

// Input is one input of a stage: the parameter that names it, its kind and
// the value as the notebook would receive it.
type Input struct {
	Param string `json:"param"`
	Kind  string `json:"kind"`
	Ref   string `json:"ref"`
}

// FingerprintRequest asks an executor what a stage's inputs are now.
type FingerprintRequest struct {
	// Task is the stage as it would run (no run id, attempt or key yet).
	Task   Task    `json:"task"`
	Inputs []Input `json:"inputs"`
}

// Fingerprint identifies the current state of one input.
type Fingerprint struct {
	Param string `json:"param"`
	// Value changes whenever what the notebook would read changes: e.g.
	// "sha256:…" of a local file's content, the size, modification time
	// and ETag of a remote one, "version 25" of a model alias. Empty means
	// the executor cannot tell: the stage is never a cache hit.
	Value string `json:"value"`
	// Resolved, when set, replaces the parameter's value in the task the
	// notebook receives, so that it reads exactly what Value names (the
	// concrete model version an alias pointed at).
	Resolved string `json:"resolved,omitempty"`
	// Detail says, for people, what Value is or why it is empty.
	Detail string `json:"detail,omitempty"`
}

// FingerprintResult answers a FingerprintRequest: one fingerprint per
// input, in the request's order.
type FingerprintResult struct {
	Fingerprints []Fingerprint `json:"fingerprints"`
}

// Fingerprinter is implemented by executors that can fingerprint a stage's
// inputs, so that the inputs are part of its cache key. The engine never
// serves a stage with inputs from the cache when its executor is not a
// Fingerprinter or answers ErrFingerprintUnsupported: when unsure, miss.
type Fingerprinter interface {
	Fingerprint(ctx context.Context, req FingerprintRequest) (FingerprintResult, error)
}

// ErrFingerprintUnsupported says the executor (e.g. a plugin built before
// the Fingerprint RPC) cannot fingerprint inputs.
var ErrFingerprintUnsupported = errors.New("the executor cannot fingerprint inputs")
