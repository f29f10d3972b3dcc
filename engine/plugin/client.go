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

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// DefaultCancelGrace is how long Run waits, after its context is cancelled,
// for the plugin to stop the stage and report how it ended.
const DefaultCancelGrace = 30 * time.Second

// ErrExited matches errors returned when an executor's process exited while
// pipectl was talking to it (see ExitedError).
var ErrExited = errors.New("executor exited unexpectedly")

// ExitedError says that an executor's process exited (crashed, was killed)
// in the middle of a call.
type ExitedError struct {
	// Executor is the executor's name.
	Executor string
	// Op is what pipectl was doing, e.g. `running stage "train"`.
	Op string
	// State is how the process ended, e.g. "signal: killed", when known.
	State string
}

func (e *ExitedError) Error() string {
	state := ""
	if e.State != "" {
		state = " (" + e.State + ")"
	}
	return fmt.Sprintf("executor %q exited unexpectedly%s while %s; its log lines above may say why", e.Executor, state, e.Op)
}

// Is makes errors.Is(err, ErrExited) true.
func (e *ExitedError) Is(target error) bool { return target == ErrExited }

// Client is the host side of one executor plugin: it implements
// executor.Executor over gRPC and io.Closer to stop the plugin process.
// It is safe for concurrent use; stages share one plugin process.
type Client struct {
	name        string
	log         hclog.Logger
	cancelGrace time.Duration
	// start starts a new plugin process; nil when the client cannot restart
	// (a connection made in tests).
	start func(context.Context) (*process, error)

	mu     sync.Mutex
	proc   *process
	closed bool
	calls  atomic.Uint64
}

var (
	_ executor.Executor = (*Client)(nil)
	_ io.Closer         = (*Client)(nil)
)

// Info is what the executor said about itself when it started.
func (c *Client) Info() executor.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return executor.Info{}
	}
	return c.proc.info
}

// conn returns the live plugin process, starting it again if it exited
// since the last call (so that one crash fails the stages it was running,
// not every later one).
func (c *Client) conn(ctx context.Context) (*process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("executor %q is closed", c.name)
	}
	if c.proc != nil && (c.start == nil || !c.proc.exited()) {
		return c.proc, nil
	}
	if c.proc != nil {
		c.log.Warn("executor process exited; starting it again", "state", c.proc.exitState())
		c.proc.kill()
	}
	p, err := c.start(ctx)
	if err != nil {
		return nil, err
	}
	c.proc = p
	return p, nil
}

// Close stops the plugin process: gracefully (it closes its executor),
// or by force after two seconds.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.proc != nil {
		c.proc.kill()
	}
	return nil
}

// rpcError turns a gRPC error into one that names the executor and says
// what happened in words. Executor errors never arrive here: they travel
// in response bodies.
func (c *Client) rpcError(ctx context.Context, p *process, op string, err error) error {
	code := status.Code(err)
	if ctxErr := ctx.Err(); ctxErr != nil && (code == codes.Canceled || code == codes.DeadlineExceeded) {
		return fmt.Errorf("executor %q: %s: %w", c.name, op, ctxErr)
	}
	switch code {
	case codes.Unimplemented:
		return fmt.Errorf("executor %q cannot %s: it implements an older executor protocol (%s); upgrade it",
			c.name, op, status.Convert(err).Message())
	case codes.ResourceExhausted:
		return fmt.Errorf("executor %q: %s: a message was too large: %s", c.name, op, status.Convert(err).Message())
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown:
		if p.waitExited(time.Second) {
			return &ExitedError{Executor: c.name, Op: op, State: p.exitState()}
		}
	}
	if code == codes.Unavailable {
		return fmt.Errorf("lost the connection to executor %q while %s: %s", c.name, op, status.Convert(err).Message())
	}
	return fmt.Errorf("executor %q failed while %s: %s", c.name, op, status.Convert(err).Message())
}

// Describe implements executor.Executor.
func (c *Client) Describe(ctx context.Context) (executor.Info, error) {
	p, err := c.conn(ctx)
	if err != nil {
		return executor.Info{}, err
	}
	return p.describe(ctx, c)
}

// Validate implements executor.Executor.
func (c *Client) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	p, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := p.rpc.Validate(ctx, validateRequestToProto(req))
	if err != nil {
		return nil, c.rpcError(ctx, p, "validating target "+strconv.Quote(req.Target), err)
	}
	if e := resp.GetError(); e != nil {
		return diagnosticsFromProto(resp.GetDiagnostics()), fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
	}
	return diagnosticsFromProto(resp.GetDiagnostics()), nil
}

// CheckOutputs implements executor.Executor.
func (c *Client) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	p, err := c.conn(ctx)
	if err != nil {
		return executor.CheckResult{}, err
	}
	resp, err := p.rpc.CheckOutputs(ctx, checkRequestToProto(req))
	if err != nil {
		return executor.CheckResult{}, c.rpcError(ctx, p, "checking the outputs of stage "+strconv.Quote(req.Task.Stage), err)
	}
	if e := resp.GetError(); e != nil {
		return executor.CheckResult{}, fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
	}
	return executor.CheckResult{Exists: resp.GetExists(), Reason: resp.GetReason()}, nil
}

// Fingerprint implements executor.Fingerprinter. A plugin built before the
// Fingerprint RPC answers UNIMPLEMENTED: that is
// executor.ErrFingerprintUnsupported.
func (c *Client) Fingerprint(ctx context.Context, req executor.FingerprintRequest) (executor.FingerprintResult, error) {
	p, err := c.conn(ctx)
	if err != nil {
		return executor.FingerprintResult{}, err
	}
	resp, err := p.rpc.Fingerprint(ctx, fingerprintRequestToProto(req))
	if status.Code(err) == codes.Unimplemented {
		return executor.FingerprintResult{}, fmt.Errorf("executor %q: %w", c.name, executor.ErrFingerprintUnsupported)
	}
	if err != nil {
		return executor.FingerprintResult{}, c.rpcError(ctx, p, "fingerprinting the inputs of stage "+strconv.Quote(req.Task.Stage), err)
	}
	if e := resp.GetError(); e != nil {
		return executor.FingerprintResult{}, fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
	}
	return fingerprintResultFromProto(resp), nil
}

// Run implements executor.Executor. Events reach sink in the order the
// executor sent them, all before Run returns.
//
// When ctx is cancelled, Run asks the plugin to cancel this call (a Cancel
// RPC, so the executor's context ends with the reason) and keeps reading
// until the plugin reports how the stage ended, so that its processes or
// remote runs are stopped before Run returns. If the plugin does not answer
// within the cancel grace, Run cuts the stream and returns Cancelled.
func (c *Client) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	if ctx.Err() != nil {
		return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled before it started: " + context.Cause(ctx).Error()}}, nil
	}
	p, err := c.conn(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	op := "running stage " + strconv.Quote(task.Stage)
	callID := strconv.FormatUint(c.calls.Add(1), 10)

	// The stream outlives ctx on purpose: cancellation goes through Cancel
	// so that the final result still arrives.
	streamCtx, cutStream := context.WithCancel(context.WithoutCancel(ctx))
	defer cutStream()
	stream, err := p.rpc.Run(streamCtx, &pb.RunRequest{CallId: callID, Task: taskToProto(task)})
	if err != nil {
		return executor.Result{}, c.rpcError(ctx, p, op, err)
	}

	done := make(chan struct{})
	defer close(done)
	var gaveUp atomic.Bool
	go c.forwardCancel(ctx, p.rpc, callID, task.Stage, done, cutStream, &gaveUp)

	for {
		ev, err := stream.Recv()
		if err != nil {
			switch {
			case gaveUp.Load():
				return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{
					Message: fmt.Sprintf("cancelled; executor %q did not stop within %s, so it may still be running", c.name, c.cancelGrace)}}, nil
			case ctx.Err() != nil && status.Code(err) == codes.Canceled:
				return executor.Result{Status: executor.Cancelled, Error: &executor.Failure{Message: "cancelled"}}, nil
			case errors.Is(err, io.EOF):
				return executor.Result{}, fmt.Errorf("executor %q ended stage %q without a result (protocol error)", c.name, task.Stage)
			}
			return executor.Result{}, c.rpcError(ctx, p, op, err)
		}
		if f := ev.GetFinal(); f != nil {
			if e := f.GetError(); e != nil {
				return executor.Result{}, fmt.Errorf("executor %q: %s", c.name, e.GetMessage())
			}
			return resultFromProto(f.GetResult()), nil
		}
		if e, ok := eventFromProto(ev); ok && sink != nil {
			sink(e)
		}
	}
}

// forwardCancel waits for ctx's end (or done) and asks the plugin to cancel
// call callID; it cuts the stream when the plugin cannot be asked or does
// not stop within cancelGrace (then gaveUp is set). what names the stage or
// group in logs. Run and RunGroup share it.
func (c *Client) forwardCancel(ctx context.Context, rpc pb.ExecutorClient, callID, what string, done <-chan struct{}, cutStream context.CancelFunc, gaveUp *atomic.Bool) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	reason := pb.CancelReason_CANCEL_REASON_CANCELLED
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = pb.CancelReason_CANCEL_REASON_DEADLINE_EXCEEDED
	}
	// The Cancel may overtake the call it names (not registered yet): ask
	// again for a while. Cutting the stream is the fallback; it still
	// cancels the executor's context on the plugin's side.
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := rpc.Cancel(cctx, &pb.CancelRequest{CallId: callID, Reason: reason})
		cancel()
		if err != nil {
			c.log.Debug("cancel failed; cutting the stream", "stage", what, "error", err)
			cutStream()
			return
		}
		if resp.GetFound() {
			break
		}
		select {
		case <-done:
			return
		case <-time.After(20 * time.Millisecond):
		}
		if attempt == 50 {
			cutStream()
			return
		}
	}
	select {
	case <-done:
	case <-time.After(c.cancelGrace):
		gaveUp.Store(true)
		c.log.Warn("executor did not stop in time after cancellation", "stage", what, "grace", c.cancelGrace)
		cutStream()
	}
}
