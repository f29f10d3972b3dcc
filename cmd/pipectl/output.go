package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	runner "github.com/pipectl/pipectl/engine/run"
)

// runOutput shows a run to people or programs. Event is called one event
// at a time; Close once, after the run, with its record.
type runOutput interface {
	Event(ev runner.Event)
	// Notice tells people something outside the events (e.g. that the
	// run is being cancelled).
	Notice(msg string)
	Close(rec *record.Run)
}

// newRunOutput picks how a run is shown. Progress and logs go to stderr;
// stdout gets the final summary, or with --json the events and nothing
// else.
//
//   - --json: one JSON event per line on stdout (docs/RUNS.md);
//   - GitHub Actions (GITHUB_ACTIONS=true): plain lines, each stage's log in
//     a ::group:: printed when the stage ends (parallel stages would
//     interleave otherwise), ::error:: annotations for failures;
//   - a terminal on stderr: a live line per stage;
//   - otherwise: plain lines, log lines prefixed with the stage name.
func (a *App) newRunOutput(jsonOut bool, pl *plan.Plan) runOutput {
	gh := a.Getenv("GITHUB_ACTIONS") == "true"
	if jsonOut {
		return &jsonOutput{enc: json.NewEncoder(a.Stdout), annotate: gh, stderr: a.Stderr}
	}
	if !gh {
		if f, ok := a.Stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) && a.Getenv("TERM") != "dumb" {
			now, _, _ := a.clock()
			return newTTYOutput(f, a.Stdout, pl, now, a.Getenv("NO_COLOR") == "", a.records)
		}
	}
	return &plainOutput{w: a.Stderr, stdout: a.Stdout, github: gh, groups: map[string][]string{}}
}

// jsonOutput prints events as JSON lines.
type jsonOutput struct {
	enc      *json.Encoder
	annotate bool
	stderr   io.Writer
}

func (o *jsonOutput) Event(ev runner.Event) {
	_ = o.enc.Encode(ev)
	if o.annotate && ev.Type == runner.StageFinished && ev.Status == record.Failed && ev.Error != nil {
		fmt.Fprintln(o.stderr, ghError("Stage "+ev.Stage+" failed", ev.Error.Message))
	}
}

func (o *jsonOutput) Close(rec *record.Run) {}

func (o *jsonOutput) Notice(msg string) { fmt.Fprintln(o.stderr, "pipectl: "+msg) }

func (o *plainOutput) Notice(msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintln(o.w, "pipectl: "+msg)
}

// plainOutput prints one line per thing that happens.
type plainOutput struct {
	mu     sync.Mutex
	w      io.Writer
	stdout io.Writer
	github bool
	// groups hold each running stage's lines until it ends (GitHub).
	groups map[string][]string
	// started are the stages that started an attempt in this run.
	started map[string]bool
}

func (o *plainOutput) Event(ev runner.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := "[" + ev.Stage + "] "
	switch ev.Type {
	case runner.RunStarted:
		resumed := ""
		if ev.Resume {
			resumed = " (resumed)"
		}
		fmt.Fprintf(o.w, "pipectl: run %s: %s on %s%s\n", ev.RunID, ev.Pipeline, ev.Target, resumed)
	case runner.StageStarted:
		why := ""
		if o.started == nil {
			o.started = map[string]bool{}
		}
		first := !o.started[ev.Stage]
		o.started[ev.Stage] = true
		if first && ev.Cache != nil && len(ev.Cache.Reasons) > 0 {
			why = " (" + strings.Join(ev.Cache.Reasons, ", ") + ")"
		}
		fmt.Fprintf(o.w, "%sstarted attempt %d%s\n", p, ev.Attempt, why)
	case runner.Log:
		for _, line := range strings.Split(strings.TrimRight(ev.Text, "\n"), "\n") {
			o.line(ev.Stage, p+line)
		}
	case runner.Progress:
		text := ev.Text
		if ev.Fraction != nil {
			text += fmt.Sprintf(" (%.0f%%)", *ev.Fraction*100)
		}
		o.line(ev.Stage, p+"progress: "+text)
	case runner.Link:
		o.line(ev.Stage, p+"link: "+ev.Link.Label+" "+ev.Link.URL)
	case runner.StageRetrying:
		o.line(ev.Stage, fmt.Sprintf("%sattempt %d failed: %s; retrying in %s", p, ev.Attempt, ev.Error.Message, fmtElapsed(time.Duration(*ev.DelayMS)*time.Millisecond)))
	case runner.StageFinished:
		o.finished(ev, p)
	}
}

// line prints a stage's line now, or keeps it for the stage's group.
func (o *plainOutput) line(stage, text string) {
	if o.github {
		o.groups[stage] = append(o.groups[stage], text)
		return
	}
	fmt.Fprintln(o.w, text)
}

func (o *plainOutput) finished(ev runner.Event, p string) {
	var head string
	dur := fmtElapsed(time.Duration(derefMS(ev.DurationMS)) * time.Millisecond)
	switch ev.Status {
	case record.Succeeded:
		head = p + "succeeded in " + dur
		if ev.Attempt == 0 && ev.Reason != "" {
			head = p + ev.Reason
		}
	case record.Cached:
		head = p + "cached"
		if ev.Reason != "" {
			head += ": " + ev.Reason
		}
	case record.Failed:
		head = p + "failed after " + dur
		if ev.Error != nil {
			head += ": " + ev.Error.Message
		}
	case record.Cancelled:
		head = p + "cancelled after " + dur
	default:
		head = p + string(ev.Status)
		if ev.Reason != "" {
			head += ": " + ev.Reason
		}
	}
	lines := o.groups[ev.Stage]
	delete(o.groups, ev.Stage)
	if o.github && len(lines) > 0 {
		fmt.Fprintln(o.w, "::group::"+head)
		for _, l := range lines {
			fmt.Fprintln(o.w, l)
		}
		fmt.Fprintln(o.w, "::endgroup::")
	} else {
		fmt.Fprintln(o.w, head)
	}
	if ev.Status == record.Failed && ev.Error != nil {
		// A user error's traceback helps nobody fix the input: it stays in
		// the stage log (pipectl logs).
		if ev.Error.Detail != "" && !ev.Error.UserError {
			for _, l := range strings.Split(strings.TrimRight(ev.Error.Detail, "\n"), "\n") {
				fmt.Fprintln(o.w, p+"  "+l)
			}
		}
		if o.github {
			fmt.Fprintln(o.w, ghError("Stage "+ev.Stage+" failed", ev.Error.Message))
		}
	}
}

func (o *plainOutput) Close(rec *record.Run) {
	summarize(rec).writeText(o.stdout)
}

func derefMS(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
