package run

import (
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

// EventSchema is the version of the Event JSON shape ("v" in every
// event). Adding fields or event types keeps it; changing or removing one
// bumps it.
const EventSchema = 1

// EventType says what happened.
type EventType string

// Event types, in the order a run emits them.
const (
	// RunStarted: run_id, pipeline, target, stages (plan order), resume.
	RunStarted EventType = "run_started"
	// StageStarted: stage, attempt (from 1), cache (why it runs).
	StageStarted EventType = "stage_started"
	// Log: stage, attempt, stream (stdout/stderr), text.
	Log EventType = "log"
	// Progress: stage, attempt, text, fraction (when known).
	Progress EventType = "progress"
	// Link: stage, attempt, link {label, url}.
	Link EventType = "link"
	// StageRetrying: stage, attempt (the one that failed), delay_ms,
	// error.
	StageRetrying EventType = "stage_retrying"
	// StageFinished: stage, status (succeeded, cached, failed, cancelled,
	// skipped, excluded), attempt (the last one; absent when none ran),
	// duration_ms, outputs, metrics, cache, reason, error.
	StageFinished EventType = "stage_finished"
	// RunFinished: status, duration_ms, error (the root cause).
	RunFinished EventType = "run_finished"
)

// Event is one thing that happened during a run. Its JSON form, one per
// line, is what `pipectl run --json` prints; fields absent from a type are
// omitted.
type Event struct {
	V       int       `json:"v"`
	Time    time.Time `json:"time"`
	Type    EventType `json:"type"`
	RunID   string    `json:"run_id"`
	Stage   string    `json:"stage,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	// Status is the stage's or the run's final status.
	Status record.Status `json:"status,omitempty"`

	Pipeline string   `json:"pipeline,omitempty"`
	Target   string   `json:"target,omitempty"`
	Stages   []string `json:"stages,omitempty"`
	Resume   bool     `json:"resume,omitempty"`

	Stream   string         `json:"stream,omitempty"`
	Text     string         `json:"text,omitempty"`
	Fraction *float64       `json:"fraction,omitempty"`
	Link     *executor.Link `json:"link,omitempty"`

	DelayMS    *int64             `json:"delay_ms,omitempty"`
	DurationMS *int64             `json:"duration_ms,omitempty"`
	Outputs    map[string]string  `json:"outputs,omitempty"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Cache      *record.CacheInfo  `json:"cache,omitempty"`
	Reason     string             `json:"reason,omitempty"`
	Error      *executor.Failure  `json:"error,omitempty"`
	RunError   *record.RunError   `json:"run_error,omitempty"`
}

func ms(d time.Duration) *int64 {
	v := d.Milliseconds()
	return &v
}
