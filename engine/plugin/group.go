package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

var _ executor.GroupRunner = (*Client)(nil)

// CanRunGroups implements executor.GroupRunner: the plugin said so in
// Describe (a plugin built before RunGroup did not).
func (c *Client) CanRunGroups() bool { return c.Info().Groups }

func groupToProto(callID string, g executor.Group) *pb.RunGroupRequest {
	req := &pb.RunGroupRequest{CallId: callID, Repair: g.Repair, Interrupted: g.Interrupted}
	for _, s := range g.Stages {
		req.Stages = append(req.Stages, &pb.GroupStage{Task: taskToProto(s.Task), Needs: s.Needs})
	}
	return req
}

func groupFromProto(req *pb.RunGroupRequest) executor.Group {
	g := executor.Group{Repair: req.GetRepair(), Interrupted: req.GetInterrupted()}
	for _, s := range req.GetStages() {
		g.Stages = append(g.Stages, executor.GroupStage{Task: taskFromProto(s.GetTask()), Needs: s.GetNeeds()})
	}
	return g
}

// RunGroup implements executor.GroupRunner over the RunGroup RPC, with the
// cancellation protocol of Run: on ctx's end a Cancel names the call, and
// the stream is read until the plugin reports how every stage ended.
func (c *Client) RunGroup(ctx context.Context, g executor.Group, sink executor.GroupSink) (executor.GroupResult, error) {
	cancelled := func(msg string) executor.GroupResult {
		res := executor.GroupResult{Results: map[string]executor.Result{}}
		for _, s := range g.Stages {
			res.Results[s.Task.Stage] = executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: msg}}
		}
		return res
	}
	if ctx.Err() != nil {
		return cancelled("cancelled before it started: " + context.Cause(ctx).Error()), nil
	}
	p, err := c.conn(ctx)
	if err != nil {
		return executor.GroupResult{}, err
	}
	op := fmt.Sprintf("running a group of %d stages", len(g.Stages))
	callID := strconv.FormatUint(c.calls.Add(1), 10)
	streamCtx, cutStream := context.WithCancel(context.WithoutCancel(ctx))
	defer cutStream()
	stream, err := p.rpc.RunGroup(streamCtx, groupToProto(callID, g))
	if err != nil {
		return executor.GroupResult{}, c.rpcError(ctx, p, op, err)
	}
	done := make(chan struct{})
	defer close(done)
	var gaveUp atomic.Bool
	go c.forwardCancel(ctx, p.rpc, callID, op, done, cutStream, &gaveUp)
	for {
		ev, err := stream.Recv()
		if err != nil {
			switch {
			case gaveUp.Load():
				return cancelled(fmt.Sprintf("cancelled; executor %q did not stop within %s, so its unit may still be running", c.name, c.cancelGrace)), nil
			case ctx.Err() != nil && status.Code(err) == codes.Canceled:
				return cancelled("cancelled"), nil
			case errors.Is(err, io.EOF):
				return executor.GroupResult{}, fmt.Errorf("executor %q ended a group without a result (protocol error)", c.name)
			}
			return executor.GroupResult{}, c.rpcError(ctx, p, op, err)
		}
		if f := ev.GetFinal(); f != nil {
			if e := f.GetError(); e != nil {
				return executor.GroupResult{Unit: f.GetUnit()}, fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
			}
			res := executor.GroupResult{Unit: f.GetUnit(), Results: map[string]executor.Result{}}
			for k, r := range f.GetResults() {
				res.Results[k] = resultFromProto(r)
			}
			return res, nil
		}
		if sink == nil {
			continue
		}
		switch {
		case ev.GetUnit() != "":
			sink("", executor.Event{Time: time.Now(), Kind: executor.EventUnit, Text: ev.GetUnit()}, nil)
		case ev.GetStarted():
			at := time.Now()
			if ts := ev.GetEvent().GetTime(); ts != nil {
				at = ts.AsTime()
			}
			sink(ev.GetStage(), executor.Event{Time: at, Kind: executor.EventStarted}, nil)
		case ev.GetDone() != nil:
			r := resultFromProto(ev.GetDone())
			sink(ev.GetStage(), executor.Event{Time: time.Now()}, &r)
		case ev.GetEvent() != nil:
			if e, ok := eventFromProto(ev.GetEvent()); ok {
				sink(ev.GetStage(), e, nil)
			}
		}
	}
}

// RunGroup serves executor.GroupRunner; an executor that is not one
// answers UNIMPLEMENTED.
func (s *server) RunGroup(req *pb.RunGroupRequest, stream pb.Executor_RunGroupServer) error {
	gr, ok := s.impl.(executor.GroupRunner)
	if !ok || !gr.CanRunGroups() {
		return s.UnimplementedExecutorServer.RunGroup(req, stream)
	}
	s.running.Add(1)
	defer s.running.Done()
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(context.Canceled)
	if id := req.GetCallId(); id != "" {
		s.mu.Lock()
		if _, dup := s.calls[id]; dup {
			s.mu.Unlock()
			return stream.Send(&pb.RunGroupEvent{Final: &pb.GroupFinal{
				Error: &pb.Error{Message: fmt.Sprintf("a call with id %q is already in progress", id)}}})
		}
		s.calls[id] = cancel
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.calls, id)
			s.mu.Unlock()
		}()
	}
	var sendMu sync.Mutex
	ended := false
	var sendErr error
	send := func(m *pb.RunGroupEvent) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if ended || sendErr != nil {
			return
		}
		sendErr = stream.Send(m)
	}
	sink := func(stage string, ev executor.Event, done *executor.Result) {
		switch {
		case done != nil:
			send(&pb.RunGroupEvent{Stage: stage, Done: resultToProto(*done)})
		case ev.Kind == executor.EventUnit:
			send(&pb.RunGroupEvent{Unit: ev.Text})
		case ev.Kind == executor.EventStarted:
			started := &pb.RunGroupEvent{Stage: stage, Started: true}
			if !ev.Time.IsZero() {
				started.Event = &pb.RunEvent{Time: timestamppb.New(ev.Time)}
			}
			send(started)
		default:
			send(&pb.RunGroupEvent{Stage: stage, Event: eventToProto(ev)})
		}
	}
	res, err := func() (res executor.GroupResult, err error) {
		defer s.recovered("RunGroup", &err)
		return gr.RunGroup(ctx, groupFromProto(req), sink)
	}()
	sendMu.Lock()
	defer sendMu.Unlock()
	ended = true
	if sendErr != nil {
		return sendErr
	}
	final := &pb.GroupFinal{Unit: res.Unit, Error: errorToProto(err)}
	if err == nil {
		final.Results = map[string]*pb.Result{}
		for k, r := range res.Results {
			final.Results[k] = resultToProto(r)
		}
	}
	return stream.Send(&pb.RunGroupEvent{Final: final})
}
