package plugin

import (
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// Conversions between the executor package's Go types and the protocol's
// messages. Each pair must round-trip (TestConvertRoundTrip).

func infoToProto(i executor.Info) *pb.Info {
	return &pb.Info{Name: i.Name, Version: i.Version, Protocol: int32(i.Protocol), Description: i.Description, Groups: i.Groups}
}

func infoFromProto(i *pb.Info) executor.Info {
	return executor.Info{Name: i.GetName(), Version: i.GetVersion(), Protocol: int(i.GetProtocol()), Description: i.GetDescription(), Groups: i.GetGroups()}
}

func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func validateRequestToProto(r executor.ValidateRequest) *pb.ValidateRequest {
	out := &pb.ValidateRequest{Pipeline: r.Pipeline, Target: r.Target, ProjectRoot: r.ProjectRoot, ConfigJson: r.Config}
	for _, s := range r.Stages {
		out.Stages = append(out.Stages, &pb.StageSpec{Name: s.Name, Type: s.Type, Notebook: s.Notebook, Params: s.Params})
	}
	return out
}

func validateRequestFromProto(r *pb.ValidateRequest) executor.ValidateRequest {
	out := executor.ValidateRequest{Pipeline: r.GetPipeline(), Target: r.GetTarget(), ProjectRoot: r.GetProjectRoot(), Config: rawJSON(r.GetConfigJson())}
	for _, s := range r.GetStages() {
		out.Stages = append(out.Stages, executor.StageSpec{Name: s.GetName(), Type: s.GetType(), Notebook: s.GetNotebook(), Params: s.GetParams()})
	}
	return out
}

func diagnosticsToProto(ds diag.Diagnostics) []*pb.Diagnostic {
	out := make([]*pb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		sev := pb.Severity_SEVERITY_ERROR
		if d.Severity == diag.Warning {
			sev = pb.Severity_SEVERITY_WARNING
		}
		pd := &pb.Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.Path, Fix: d.Fix}
		if d.Pos != (diag.Pos{}) {
			pd.Pos = &pb.Pos{File: d.Pos.File, Line: int32(d.Pos.Line), Col: int32(d.Pos.Col)}
		}
		out = append(out, pd)
	}
	return out
}

func diagnosticsFromProto(ds []*pb.Diagnostic) diag.Diagnostics {
	if len(ds) == 0 {
		return nil
	}
	out := make(diag.Diagnostics, 0, len(ds))
	for _, d := range ds {
		sev := diag.Error // unspecified counts as an error
		if d.GetSeverity() == pb.Severity_SEVERITY_WARNING {
			sev = diag.Warning
		}
		out = append(out, diag.Diagnostic{
			Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(), Path: d.GetPath(), Fix: d.GetFix(),
			Pos: diag.Pos{File: d.GetPos().GetFile(), Line: int(d.GetPos().GetLine()), Col: int(d.GetPos().GetCol())},
		})
	}
	return out
}

func taskToProto(t executor.Task) *pb.Task {
	out := &pb.Task{
		RunId: t.RunID, Pipeline: t.Pipeline, Target: t.Target, Stage: t.Stage, Type: t.Type,
		Notebook: t.Notebook, ProjectRoot: t.ProjectRoot, Params: t.Params, Attempt: int32(t.Attempt),
		ConfigJson: t.Config, CacheKey: t.CacheKey, GitCommit: t.GitCommit, StateDir: t.StateDir, LogPath: t.LogPath,
		Outputs: t.Outputs,
	}
	if t.Timeout != 0 {
		out.Timeout = durationpb.New(t.Timeout)
	}
	return out
}

func taskFromProto(t *pb.Task) executor.Task {
	out := executor.Task{
		RunID: t.GetRunId(), Pipeline: t.GetPipeline(), Target: t.GetTarget(), Stage: t.GetStage(), Type: t.GetType(),
		Notebook: t.GetNotebook(), ProjectRoot: t.GetProjectRoot(), Params: t.GetParams(), Attempt: int(t.GetAttempt()),
		Config: rawJSON(t.GetConfigJson()), CacheKey: t.GetCacheKey(), GitCommit: t.GetGitCommit(), StateDir: t.GetStateDir(), LogPath: t.GetLogPath(),
		Outputs: t.GetOutputs(),
	}
	if t.GetTimeout() != nil {
		out.Timeout = t.GetTimeout().AsDuration()
	}
	return out
}

func linkToProto(l executor.Link) *pb.Link { return &pb.Link{Label: l.Label, Url: l.URL} }

func linkFromProto(l *pb.Link) executor.Link {
	return executor.Link{Label: l.GetLabel(), URL: l.GetUrl()}
}

// eventToProto converts an event; an event of an unknown kind travels as a
// log line so that nothing is lost.
func eventToProto(e executor.Event) *pb.RunEvent {
	out := &pb.RunEvent{}
	if !e.Time.IsZero() {
		out.Time = timestamppb.New(e.Time)
	}
	switch {
	case e.Kind == executor.EventProgress:
		out.Event = &pb.RunEvent_Progress{Progress: &pb.Progress{Text: e.Text, Fraction: e.Fraction}}
	case e.Kind == executor.EventLink && e.Link != nil:
		out.Event = &pb.RunEvent_Link{Link: linkToProto(*e.Link)}
	default:
		out.Event = &pb.RunEvent_Log{Log: &pb.LogLine{Stream: e.Stream, Text: e.Text}}
	}
	return out
}

// eventFromProto converts a non-final event; ok is false for messages this
// version does not know (a newer plugin's event kinds), which are skipped.
func eventFromProto(e *pb.RunEvent) (executor.Event, bool) {
	var out executor.Event
	if e.GetTime() != nil {
		out.Time = e.GetTime().AsTime()
	} else {
		out.Time = time.Now()
	}
	switch ev := e.GetEvent().(type) {
	case *pb.RunEvent_Log:
		out.Kind, out.Stream, out.Text = executor.EventLog, ev.Log.GetStream(), ev.Log.GetText()
	case *pb.RunEvent_Progress:
		out.Kind, out.Text, out.Fraction = executor.EventProgress, ev.Progress.GetText(), ev.Progress.GetFraction()
	case *pb.RunEvent_Link:
		l := linkFromProto(ev.Link)
		out.Kind, out.Link = executor.EventLink, &l
	default:
		return out, false
	}
	return out, true
}

func statusToProto(s executor.Status) pb.Status {
	switch s {
	case executor.Succeeded:
		return pb.Status_STATUS_SUCCEEDED
	case executor.Failed:
		return pb.Status_STATUS_FAILED
	case executor.Cancelled:
		return pb.Status_STATUS_CANCELLED
	}
	return pb.Status_STATUS_UNSPECIFIED
}

func resultToProto(r executor.Result) *pb.Result {
	out := &pb.Result{Status: statusToProto(r.Status), Outputs: r.Outputs, Metrics: r.Metrics}
	for _, l := range r.Links {
		out.Links = append(out.Links, linkToProto(l))
	}
	if r.Error != nil {
		out.Failure = &pb.Failure{Message: r.Error.Message, Detail: r.Error.Detail, Retryable: r.Error.Retryable, UserError: r.Error.UserError}
	}
	return out
}

// resultFromProto converts a result. A status the host does not know (or
// none) is a failure, never a success.
func resultFromProto(r *pb.Result) executor.Result {
	out := executor.Result{Outputs: r.GetOutputs(), Metrics: r.GetMetrics()}
	switch r.GetStatus() {
	case pb.Status_STATUS_SUCCEEDED:
		out.Status = executor.Succeeded
	case pb.Status_STATUS_CANCELLED:
		out.Status = executor.Cancelled
	case pb.Status_STATUS_FAILED:
		out.Status = executor.Failed
	default:
		out.Status = executor.Failed
		if r.GetFailure() == nil {
			out.Error = &executor.Failure{Message: "the executor reported no status"}
		}
	}
	for _, l := range r.GetLinks() {
		out.Links = append(out.Links, linkFromProto(l))
	}
	if f := r.GetFailure(); f != nil {
		out.Error = &executor.Failure{Message: f.GetMessage(), Detail: f.GetDetail(), Retryable: f.GetRetryable(), UserError: f.GetUserError()}
	}
	return out
}

func checkRequestToProto(r executor.CheckRequest) *pb.CheckOutputsRequest {
	return &pb.CheckOutputsRequest{Task: taskToProto(r.Task), Outputs: r.Outputs}
}

func checkRequestFromProto(r *pb.CheckOutputsRequest) executor.CheckRequest {
	return executor.CheckRequest{Task: taskFromProto(r.GetTask()), Outputs: r.GetOutputs()}
}

func errorToProto(err error) *pb.Error {
	if err == nil {
		return nil
	}
	return &pb.Error{Message: err.Error()}
}

func fingerprintRequestToProto(r executor.FingerprintRequest) *pb.FingerprintRequest {
	out := &pb.FingerprintRequest{Task: taskToProto(r.Task)}
	for _, in := range r.Inputs {
		out.Inputs = append(out.Inputs, &pb.Input{Param: in.Param, Kind: in.Kind, Ref: in.Ref})
	}
	return out
}

func fingerprintRequestFromProto(r *pb.FingerprintRequest) executor.FingerprintRequest {
	out := executor.FingerprintRequest{Task: taskFromProto(r.GetTask())}
	for _, in := range r.GetInputs() {
		out.Inputs = append(out.Inputs, executor.Input{Param: in.GetParam(), Kind: in.GetKind(), Ref: in.GetRef()})
	}
	return out
}

func fingerprintResultToProto(r executor.FingerprintResult) *pb.FingerprintResponse {
	out := &pb.FingerprintResponse{}
	for _, f := range r.Fingerprints {
		out.Fingerprints = append(out.Fingerprints, &pb.Fingerprint{Param: f.Param, Value: f.Value, Resolved: f.Resolved, Detail: f.Detail})
	}
	return out
}

func fingerprintResultFromProto(r *pb.FingerprintResponse) executor.FingerprintResult {
	var out executor.FingerprintResult
	for _, f := range r.GetFingerprints() {
		out.Fingerprints = append(out.Fingerprints, executor.Fingerprint{Param: f.GetParam(), Value: f.GetValue(), Resolved: f.GetResolved(), Detail: f.GetDetail()})
	}
	return out
}
