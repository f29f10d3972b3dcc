package plugin

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// inProcess connects a Client to a server adapter over a real gRPC
// connection in this process (go-plugin's test connection): the protocol
// and the adapters without a plugin process.
func inProcess(t *testing.T, impl executor.Executor) *Client {
	t.Helper()
	log := testLogger(t)
	srv := newServer(impl, log)
	gc, _ := goplugin.TestPluginGRPCConn(t, false, map[string]goplugin.Plugin{pluginName: &grpcPlugin{server: srv}})
	// Close shuts the server down through go-plugin's controller; stopping
	// it here as well would race inside go-plugin.
	t.Cleanup(func() { gc.Close() })
	raw, err := gc.Dispense(pluginName)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{name: "test", log: log, cancelGrace: 5 * time.Second, proc: &process{rpc: raw.(pb.ExecutorClient)}}
}

func TestConvertRoundTrip(t *testing.T) {
	task := executor.Task{
		RunID: "r1", Pipeline: "p", Target: "dev", Stage: "train", Type: "train", Notebook: "nb/train.py",
		ProjectRoot: "/p", Params: map[string]string{"a": "1", "b": ""}, Attempt: 2, Timeout: 90 * time.Second,
		Config: json.RawMessage(`{"command":"echo"}`), CacheKey: "k", GitCommit: "abc", StateDir: "/p/.pipectl", LogPath: "/p/log",
		Outputs: []string{"model_uri", "run_id"},
	}
	if diff := cmp.Diff(task, taskFromProto(taskToProto(task))); diff != "" {
		t.Errorf("task changed in transit\n%s", diff)
	}
	res := executor.Result{Status: executor.Failed, Outputs: map[string]string{"o": "v"}, Metrics: map[string]float64{"f1": 0.5},
		Links: []executor.Link{{Label: "run", URL: "https://x"}}, Error: &executor.Failure{Message: "m", Detail: "d", Retryable: true, UserError: true}}
	if diff := cmp.Diff(res, resultFromProto(resultToProto(res))); diff != "" {
		t.Errorf("result changed in transit\n%s", diff)
	}
	ds := diag.Diagnostics{
		{Severity: diag.Warning, Summary: "w", Path: "a.b"},
		{Severity: diag.Error, Summary: "e", Detail: "d", Fix: "f", Pos: diag.Pos{File: "x.cue", Line: 1, Col: 2}},
	}
	if diff := cmp.Diff(ds, diagnosticsFromProto(diagnosticsToProto(ds))); diff != "" {
		t.Errorf("diagnostics changed in transit\n%s", diff)
	}
	vr := executor.ValidateRequest{Pipeline: "p", Target: "t", ProjectRoot: "/p", Config: json.RawMessage(`{}`),
		Stages: []executor.StageSpec{{Name: "s", Type: "custom", Notebook: "n.py", Params: map[string]string{"k": "v"}}}}
	if diff := cmp.Diff(vr, validateRequestFromProto(validateRequestToProto(vr))); diff != "" {
		t.Errorf("validate request changed in transit\n%s", diff)
	}
	now := time.Now().Round(0)
	for _, ev := range []executor.Event{
		{Time: now, Kind: executor.EventLog, Stream: "stderr", Text: "x"},
		{Time: now, Kind: executor.EventProgress, Text: "p", Fraction: -1},
		{Time: now, Kind: executor.EventLink, Link: &executor.Link{Label: "l", URL: "u"}},
	} {
		got, ok := eventFromProto(eventToProto(ev))
		if diff := cmp.Diff(ev, got, cmpopts.EquateApproxTime(0)); !ok || diff != "" {
			t.Errorf("event changed in transit\n%s", diff)
		}
	}
	// A status the host does not know is never a success.
	if got := resultFromProto(&pb.Result{Status: pb.Status(42)}); got.Status != executor.Failed || got.Error == nil {
		t.Errorf("unknown status became %+v, want failed with a message", got)
	}
}

func TestStreamingEventsArriveInOrderBeforeTheResult(t *testing.T) {
	c := inProcess(t, testExecutor{})
	var mu sync.Mutex
	var got []string
	res, err := c.Run(context.Background(), executor.Task{Stage: "s", Attempt: 1, Params: map[string]string{"events": "200"}},
		func(e executor.Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, string(e.Kind)+":"+e.Text)
		})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 202 {
		t.Fatalf("got %d events before Run returned, want 202", len(got))
	}
	for i := range 200 {
		if want := "log:line " + strconv.Itoa(i); got[i] != want {
			t.Fatalf("event %d = %q, want %q", i, got[i], want)
		}
	}
	if got[200] != "progress:half way" || got[201] != "link:" {
		t.Errorf("last events = %q", got[200:])
	}
	want := executor.Result{Status: executor.Succeeded, Outputs: map[string]string{"stage": "s", "attempt": "1", "config": ""},
		Metrics: map[string]float64{"events": 200}, Links: []executor.Link{{Label: "log", URL: "file:///tmp/log"}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("wrong result\n%s", diff)
	}
}

func TestResponsesCarryDiagnosticsAndExecutorErrors(t *testing.T) {
	c := inProcess(t, testExecutor{})
	ctx := context.Background()
	ds, err := c.Validate(ctx, executor.ValidateRequest{Target: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Severity != diag.Warning || ds[1].Pos.Line != 3 || ds[1].Fix != "set config.command" {
		t.Errorf("diagnostics = %+v", ds)
	}
	if _, err := c.Validate(ctx, executor.ValidateRequest{Target: "broken"}); err == nil || !strings.Contains(err.Error(), "cannot reach the workspace") {
		t.Errorf("validate error = %v", err)
	}
	if _, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"error": "true"}}, nil); err == nil ||
		err.Error() != `executor "test": the executor is misconfigured` {
		t.Errorf("run error = %v", err)
	}
	res, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"fail": "true"}}, nil)
	if err != nil || res.Status != executor.Failed || !res.Error.Retryable || res.Error.Detail != "Traceback..." {
		t.Errorf("failed stage = %+v, %v", res, err)
	}
	for outputs, want := range map[string]executor.CheckResult{"present": {Exists: true}, "": {Reason: "x is gone"}} {
		got, err := c.CheckOutputs(ctx, executor.CheckRequest{Outputs: map[string]string{"x": outputs}})
		if err != nil || got != want {
			t.Errorf("CheckOutputs(%q) = %+v, %v; want %+v", outputs, got, err, want)
		}
	}
	info, err := c.Describe(ctx)
	if err != nil || info.Name != "test" || info.Protocol != executor.ProtocolVersion {
		t.Errorf("Describe = %+v, %v", info, err)
	}
}

func TestPanicInExecutorBecomesAnError(t *testing.T) {
	c := inProcess(t, testExecutor{})
	_, err := c.Run(context.Background(), executor.Task{Stage: "s", Params: map[string]string{"panic": "true"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "executor panicked in Run: boom") {
		t.Fatalf("err = %v", err)
	}
	// The plugin still serves.
	if _, err := c.Run(context.Background(), executor.Task{Stage: "s"}, nil); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestCancelReachesRunWithItsReason(t *testing.T) {
	tests := map[string]struct {
		ctx  func() (context.Context, context.CancelFunc)
		want string
	}{
		"cancelled": {func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, "stopped: context canceled"},
		"deadline": {func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, "stopped: stage timeout: context deadline exceeded"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := inProcess(t, testExecutor{})
			ctx, cancel := tc.ctx()
			defer cancel()
			res, err := c.Run(ctx, executor.Task{Stage: "s", Params: map[string]string{"sleep": "1h"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The message comes from the executor: it saw its context end.
			if res.Status != executor.Cancelled || res.Error == nil || res.Error.Message != tc.want {
				t.Errorf("result = %+v, want cancelled with %q", res, tc.want)
			}
		})
	}
}

// TestCancelRightAfterTheStart cancels at once, so that Cancel may reach
// the plugin before the Run it names.
func TestCancelRightAfterTheStart(t *testing.T) {
	c := inProcess(t, testExecutor{})
	ctx := context.Background()
	res, err := c.Run(ctxCancelled(), executor.Task{Stage: "s", Params: map[string]string{"sleep": "1h"}}, nil)
	if err != nil || res.Status != executor.Cancelled {
		t.Fatalf("pre-cancelled context: %+v, %v", res, err)
	}
	for i := range 20 {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(time.Duration(i)*100*time.Microsecond, cancel)
		t0 := time.Now()
		res, err := c.Run(cctx, executor.Task{Stage: "s", Params: map[string]string{"sleep": "1h"}}, nil)
		cancel()
		if err != nil || res.Status != executor.Cancelled {
			t.Fatalf("cancel after %dµs: %+v, %v", i*100, res, err)
		}
		if d := time.Since(t0); d > 3*time.Second {
			t.Errorf("cancel after %dµs took %s", i*100, d)
		}
	}
}

func ctxCancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// stubborn ignores cancellation for a while, like an executor whose remote
// cancel hangs.
type stubborn struct{ testExecutor }

func (stubborn) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	<-ctx.Done()
	time.Sleep(2 * time.Second)
	return executor.Result{Status: executor.Succeeded}, nil
}

func TestRunGivesUpAfterTheCancelGrace(t *testing.T) {
	c := inProcess(t, stubborn{})
	c.cancelGrace = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := c.Run(ctx, executor.Task{Stage: "s"}, nil)
	if err != nil || res.Status != executor.Cancelled || !strings.Contains(res.Error.Message, "did not stop within 100ms") {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestCancelOfAFinishedCallIsHarmless(t *testing.T) {
	srv := newServer(testExecutor{}, testLogger(t))
	resp, err := srv.Cancel(context.Background(), &pb.CancelRequest{CallId: "nope"})
	if err != nil || resp.GetFound() {
		t.Fatalf("Cancel of an unknown call = %v, %v", resp, err)
	}
}

func TestFuncExecutorDefaults(t *testing.T) {
	f := &FuncExecutor{Info: executor.Info{Name: "x", Version: "1"}}
	info, _ := f.Describe(context.Background())
	if info.Protocol != executor.ProtocolVersion {
		t.Errorf("protocol = %d", info.Protocol)
	}
	if res, _ := f.CheckOutputs(context.Background(), executor.CheckRequest{}); res.Exists {
		t.Error("CheckOutputs without a func must not claim outputs exist")
	}
	if _, err := f.Run(context.Background(), executor.Task{}, nil); err == nil {
		t.Error("Run without RunFunc must fail")
	}
	if _, err := f.Validate(context.Background(), executor.ValidateRequest{}); err != nil {
		t.Error(err)
	}
}
