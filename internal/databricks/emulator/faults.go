package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// HTTPFault makes the emulator answer requests with an error status
// instead of serving them, e.g. a burst of 429s with Retry-After.
type HTTPFault struct {
	// Endpoint is "METHOD /path" as counted by Calls, e.g.
	// "GET /api/2.2/jobs/runs/get"; empty matches every request.
	Endpoint string
	// Status is the HTTP status: 429, 503, 500, ...; 0 serves the request
	// normally after Delay (to widen race windows in tests).
	Status int
	// Delay is how long the emulator waits before answering.
	Delay time.Duration
	// LoseResponse serves the request at once (its effect happens) and
	// then holds the answer this long, or until the client gives up: a
	// client cancelled meanwhile never learns the result, as when an answer
	// is lost.
	LoseResponse time.Duration
	// Gather holds matching requests until this many have arrived, then
	// lets them all proceed (within 30 s), so that tests can make calls
	// from concurrent clients overlap. It sets Count.
	Gather int
	// Count is how many matching requests fail; at least 1.
	Count int
	// RetryAfter sets the Retry-After header (whole seconds, rounded up);
	// zero sends none.
	RetryAfter time.Duration
	// ErrorCode and Message override the body's error_code and message.
	ErrorCode, Message string

	gathered int
	release  chan struct{}
}

// arrive registers a request held by a Gather fault and returns the
// channel that releases it; callers hold e.mu.
func (f *HTTPFault) arrive() <-chan struct{} {
	f.gathered++
	if f.gathered == f.Gather {
		close(f.release)
	}
	return f.release
}

// InjectHTTP queues a fault; faults are used in the order injected.
func (e *Emulator) InjectHTTP(f HTTPFault) {
	if f.Gather > 0 {
		f.Count = f.Gather
		f.release = make(chan struct{})
	}
	if f.Count < 1 {
		f.Count = 1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.httpFaults = append(e.httpFaults, &f)
}

// takeHTTPFault returns the first fault matching ep and uses it up;
// callers hold e.mu.
func (e *Emulator) takeHTTPFault(ep string) *HTTPFault {
	for i, f := range e.httpFaults {
		if f.Endpoint != "" && f.Endpoint != ep {
			continue
		}
		f.Count--
		if f.Count <= 0 {
			e.httpFaults = append(e.httpFaults[:i], e.httpFaults[i+1:]...)
		}
		return f
	}
	return nil
}

func (f *HTTPFault) write(w http.ResponseWriter) {
	code, msg := f.ErrorCode, f.Message
	switch {
	case code != "":
	case f.Status == http.StatusTooManyRequests:
		code = "REQUEST_LIMIT_EXCEEDED"
	case f.Status == http.StatusServiceUnavailable:
		code = "TEMPORARILY_UNAVAILABLE"
	default:
		code = "INTERNAL_ERROR"
	}
	if msg == "" {
		switch f.Status {
		case http.StatusTooManyRequests:
			msg = "Your request was rejected since your organization has exceeded the rate limit. Please retry your request later."
		case http.StatusServiceUnavailable:
			msg = "The service is temporarily unavailable. Please retry your request later."
		default:
			msg = "Internal error (injected by the emulator)."
		}
	}
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_code": code, "message": msg})
}

// FaultKind is what a TaskFault does to a task run.
type FaultKind int

const (
	// FailTask ends the task FAILED (RUN_EXECUTION_ERROR, CLIENT_ERROR)
	// with Error and Trace as its output, without running the notebook.
	FailTask FaultKind = iota + 1
	// InternalError ends the task in the INTERNAL_ERROR life cycle state
	// (termination type INTERNAL_ERROR), as a platform failure does.
	InternalError
	// CloudFailure ends the task with termination type CLOUD_FAILURE.
	CloudFailure
	// StuckPending leaves the task PENDING until it is cancelled.
	StuckPending
	// Slow keeps the task RUNNING for Delay before the notebook starts.
	Slow
)

// TaskFault changes what happens to matching task runs.
type TaskFault struct {
	// TaskKey selects the task; empty matches every task.
	TaskKey string
	Kind    FaultKind
	// Delay is the extra running time of a Slow task.
	Delay time.Duration
	// Error and Trace are the output of a FailTask task.
	Error, Trace string
	// Times is how many task runs the fault applies to; 0 means all.
	Times int
}

// InjectTask adds a task fault.
func (e *Emulator) InjectTask(f TaskFault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.taskFaults = append(e.taskFaults, &f)
}

// ClearFaults removes every HTTP and task fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.httpFaults, e.taskFaults = nil, nil
}

// takeTaskFaults returns the faults that apply to a task run of key and
// uses them up; callers hold e.mu.
func (e *Emulator) takeTaskFaults(key string) []TaskFault {
	var out []TaskFault
	kept := e.taskFaults[:0]
	for _, f := range e.taskFaults {
		if f.TaskKey != "" && f.TaskKey != key {
			kept = append(kept, f)
			continue
		}
		out = append(out, *f)
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				continue
			}
		}
		kept = append(kept, f)
	}
	e.taskFaults = kept
	return out
}
