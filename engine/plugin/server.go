package plugin

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// server adapts an executor.Executor to the gRPC service. Errors of the
// executor travel in response bodies; a gRPC error only ever means the
// transport failed. A panic in the executor becomes an executor error
// instead of killing the plugin and every stage running in it.
type server struct {
	pb.UnimplementedExecutorServer
	impl executor.Executor
	log  hclog.Logger

	mu    sync.Mutex
	calls map[string]context.CancelCauseFunc
	// running counts Run calls in progress, so that shutdown can wait for
	// them to clean up.
	running sync.WaitGroup
}

func newServer(impl executor.Executor, log hclog.Logger) *server {
	return &server{impl: impl, log: log, calls: map[string]context.CancelCauseFunc{}}
}

// recovered turns a panic in the executor into an error, logging the stack.
func (s *server) recovered(method string, errp *error) {
	if r := recover(); r != nil {
		s.log.Error("executor panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*errp = fmt.Errorf("executor panicked in %s: %v", method, r)
	}
}

func (s *server) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	info, err := func() (info executor.Info, err error) {
		defer s.recovered("Describe", &err)
		info, err = s.impl.Describe(ctx)
		gr, ok := s.impl.(executor.GroupRunner)
		info.Groups = ok && gr.CanRunGroups()
		return info, err
	}()
	if err != nil {
		return &pb.DescribeResponse{Error: errorToProto(err)}, nil
	}
	return &pb.DescribeResponse{Info: infoToProto(info)}, nil
}

func (s *server) Validate(ctx context.Context, req *pb.ValidateRequest) (*pb.ValidateResponse, error) {
	ds, err := func() (ds []*pb.Diagnostic, err error) {
		defer s.recovered("Validate", &err)
		d, err := s.impl.Validate(ctx, validateRequestFromProto(req))
		return diagnosticsToProto(d), err
	}()
	return &pb.ValidateResponse{Diagnostics: ds, Error: errorToProto(err)}, nil
}

func (s *server) CheckOutputs(ctx context.Context, req *pb.CheckOutputsRequest) (*pb.CheckOutputsResponse, error) {
	res, err := func() (res executor.CheckResult, err error) {
		defer s.recovered("CheckOutputs", &err)
		return s.impl.CheckOutputs(ctx, checkRequestFromProto(req))
	}()
	if err != nil {
		return &pb.CheckOutputsResponse{Error: errorToProto(err)}, nil
	}
	return &pb.CheckOutputsResponse{Exists: res.Exists, Reason: res.Reason}, nil
}

// Fingerprint serves executor.Fingerprinter; an executor that is not one
// answers UNIMPLEMENTED, as a plugin built before the RPC does.
func (s *server) Fingerprint(ctx context.Context, req *pb.FingerprintRequest) (*pb.FingerprintResponse, error) {
	fp, ok := s.impl.(executor.Fingerprinter)
	if !ok {
		return s.UnimplementedExecutorServer.Fingerprint(ctx, req)
	}
	res, err := func() (res executor.FingerprintResult, err error) {
		defer s.recovered("Fingerprint", &err)
		return fp.Fingerprint(ctx, fingerprintRequestFromProto(req))
	}()
	if errors.Is(err, executor.ErrFingerprintUnsupported) {
		return s.UnimplementedExecutorServer.Fingerprint(ctx, req)
	}
	if err != nil {
		return &pb.FingerprintResponse{Error: errorToProto(err)}, nil
	}
	return fingerprintResultToProto(res), nil
}

// errDeadline is the cause of a Run context cancelled because the attempt's
// timeout passed (CANCEL_REASON_DEADLINE_EXCEEDED).
var errDeadline = fmt.Errorf("stage timeout: %w", context.DeadlineExceeded)

func (s *server) Cancel(_ context.Context, req *pb.CancelRequest) (*pb.CancelResponse, error) {
	s.mu.Lock()
	cancel, ok := s.calls[req.GetCallId()]
	s.mu.Unlock()
	if ok {
		cause := context.Canceled
		if req.GetReason() == pb.CancelReason_CANCEL_REASON_DEADLINE_EXCEEDED {
			cause = errDeadline
		}
		cancel(cause)
	}
	return &pb.CancelResponse{Found: ok}, nil
}

// cancelAll cancels every Run in progress (shutdown).
func (s *server) cancelAll(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cancel := range s.calls {
		cancel(cause)
	}
}

// waitRunning waits up to grace for Run calls in progress to return and
// reports whether they all did.
func (s *server) waitRunning(grace time.Duration) bool {
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(grace):
		return false
	}
}

// Run streams the executor's events in the order it reports them, then the
// final result. The executor's context ends when the client cancels the
// RPC, loses the connection, or sends Cancel for this call.
func (s *server) Run(req *pb.RunRequest, stream pb.Executor_RunServer) error {
	s.running.Add(1)
	defer s.running.Done()
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(context.Canceled)
	if id := req.GetCallId(); id != "" {
		s.mu.Lock()
		if _, dup := s.calls[id]; dup {
			s.mu.Unlock()
			return stream.Send(&pb.RunEvent{Time: timestamppb.Now(), Event: &pb.RunEvent_Final{Final: &pb.Final{
				Error: &pb.Error{Message: fmt.Sprintf("a Run with call id %q is already in progress", id)}}}})
		}
		s.calls[id] = cancel
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.calls, id)
			s.mu.Unlock()
		}()
	}

	// The executor may call sink from any goroutine, and even after Run
	// returned; gRPC streams are not safe for concurrent sends.
	var sendMu sync.Mutex
	ended := false
	var sendErr error
	sink := func(ev executor.Event) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if ended || sendErr != nil {
			return
		}
		sendErr = stream.Send(eventToProto(ev))
	}
	task := taskFromProto(req.GetTask())
	res, err := func() (res executor.Result, err error) {
		defer s.recovered("Run", &err)
		return s.impl.Run(ctx, task, sink)
	}()

	sendMu.Lock()
	defer sendMu.Unlock()
	ended = true
	if sendErr != nil {
		// The client went away; nothing more can reach it.
		return sendErr
	}
	final := &pb.Final{Error: errorToProto(err)}
	if err == nil {
		final.Result = resultToProto(res)
	}
	if err := stream.Send(&pb.RunEvent{Time: timestamppb.Now(), Event: &pb.RunEvent_Final{Final: final}}); err != nil {
		if !errors.Is(ctx.Err(), context.Canceled) {
			s.log.Warn("could not send the result", "stage", task.Stage, "error", err)
		}
		return err
	}
	return nil
}
