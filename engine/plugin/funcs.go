package plugin

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/executor"
)

// FuncExecutor is an executor.Executor made of functions, for executors
// that need little more than Run:
//
//	plugin.Serve(&plugin.FuncExecutor{
//		Info:    executor.Info{Name: "shell", Version: "1.0.0"},
//		RunFunc: run,
//	})
type FuncExecutor struct {
	// Info is returned by Describe; Protocol is filled in.
	Info executor.Info
	// ValidateFunc checks a target; nil accepts every target.
	ValidateFunc func(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error)
	// RunFunc runs one attempt of one stage; required.
	RunFunc func(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error)
	// CheckOutputsFunc reports whether cached outputs still exist; nil
	// answers "no", so stages of this executor are never served from the
	// cache on trust.
	CheckOutputsFunc func(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error)
}

var _ executor.Executor = (*FuncExecutor)(nil)

// Describe implements executor.Executor.
func (f *FuncExecutor) Describe(context.Context) (executor.Info, error) {
	info := f.Info
	info.Protocol = executor.ProtocolVersion
	return info, nil
}

// Validate implements executor.Executor.
func (f *FuncExecutor) Validate(ctx context.Context, req executor.ValidateRequest) (diag.Diagnostics, error) {
	if f.ValidateFunc == nil {
		return nil, nil
	}
	return f.ValidateFunc(ctx, req)
}

// Run implements executor.Executor.
func (f *FuncExecutor) Run(ctx context.Context, task executor.Task, sink executor.EventSink) (executor.Result, error) {
	if f.RunFunc == nil {
		return executor.Result{}, fmt.Errorf("executor %q has no RunFunc", f.Info.Name)
	}
	return f.RunFunc(ctx, task, sink)
}

// CheckOutputs implements executor.Executor.
func (f *FuncExecutor) CheckOutputs(ctx context.Context, req executor.CheckRequest) (executor.CheckResult, error) {
	if f.CheckOutputsFunc == nil {
		return executor.CheckResult{Exists: false, Reason: fmt.Sprintf("executor %q cannot check outputs", f.Info.Name)}, nil
	}
	return f.CheckOutputsFunc(ctx, req)
}

// LogWriter turns what a process writes into log events, one per line,
// e.g. cmd.Stdout = plugin.NewLogWriter(sink, "stdout"). Call Flush when
// the process has exited to send a last line without a newline.
type LogWriter struct {
	mu     sync.Mutex
	sink   executor.EventSink
	stream string
	buf    []byte
}

// NewLogWriter returns a LogWriter that sends lines of stream ("stdout" or
// "stderr") to sink.
func NewLogWriter(sink executor.EventSink, stream string) *LogWriter {
	return &LogWriter{sink: sink, stream: stream}
}

// Write implements io.Writer.
func (w *LogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

// Flush sends what is left of an unfinished line.
func (w *LogWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}

func (w *LogWriter) emit(line string) {
	w.sink(executor.Event{Time: time.Now(), Kind: executor.EventLog, Stream: w.stream, Text: line})
}
