package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
	runner "github.com/pipectl/pipectl/engine/run"
)

// ttyOutput keeps one live line per stage on a terminal: state, elapsed
// time, attempt and the stage's latest log line. Logs stay in the run's
// log files; a failure's last lines are printed when the run ends.
type ttyOutput struct {
	mu      sync.Mutex
	w       io.Writer
	stdout  io.Writer
	fd      uintptr
	now     func() time.Time
	color   bool
	records func() (*record.Store, error)

	runID, title string
	started      time.Time
	order        []string
	stages       map[string]*ttyStage
	drawn        int
	tick         int
	notice       string
	stop, done   chan struct{}
}

type ttyStage struct {
	status  record.Status
	attempt int
	started time.Time
	elapsed time.Duration
	note    string
}

func newTTYOutput(f *os.File, stdout io.Writer, pl *plan.Plan, now func() time.Time, color bool, records func() (*record.Store, error)) *ttyOutput {
	o := &ttyOutput{w: f, stdout: stdout, fd: f.Fd(), now: now, color: color, records: records,
		order: pl.Order(), stages: map[string]*ttyStage{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range o.order {
		o.stages[n] = &ttyStage{status: record.Pending}
	}
	go o.loop()
	return o
}

func (o *ttyOutput) loop() {
	defer close(o.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			o.mu.Lock()
			o.tick++
			o.draw()
			o.mu.Unlock()
		case <-o.stop:
			return
		}
	}
}

func (o *ttyOutput) Event(ev runner.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.stages[ev.Stage]
	switch ev.Type {
	case runner.RunStarted:
		o.runID, o.started = ev.RunID, ev.Time
		o.title = fmt.Sprintf("run %s: %s on %s", ev.RunID, ev.Pipeline, ev.Target)
	case runner.StageStarted:
		s.status, s.attempt, s.note = record.Running, ev.Attempt, ""
		if s.started.IsZero() {
			s.started = ev.Time
		}
	case runner.Log, runner.Progress:
		if t := strings.TrimSpace(lastLine(ev.Text)); t != "" {
			s.note = t
		}
	case runner.Link:
		s.note = ev.Link.Label + " " + ev.Link.URL
	case runner.StageRetrying:
		s.note = fmt.Sprintf("retrying in %s: %s", fmtElapsed(time.Duration(*ev.DelayMS)*time.Millisecond), ev.Error.Message)
	case runner.StageFinished:
		s.status = ev.Status
		s.elapsed = time.Duration(derefMS(ev.DurationMS)) * time.Millisecond
		s.note = ev.Reason
		if ev.Error != nil {
			s.note = ev.Error.Message
		}
		if ev.Status == record.Succeeded {
			s.note = ""
		}
	}
	o.draw()
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// frame renders the live block, one line per stage under a title line.
func (o *ttyOutput) frame(now time.Time, width int) []string {
	lines := []string{o.title}
	if !o.started.IsZero() {
		lines[0] += "  " + fmtElapsed(now.Sub(o.started))
	}
	nameW := 0
	for _, n := range o.order {
		nameW = max(nameW, len(n))
	}
	for _, n := range o.order {
		s := o.stages[n]
		icon, color := statusIcon(s.status, o.tick)
		var elapsed, extra string
		switch s.status {
		case record.Running:
			elapsed = fmtElapsed(now.Sub(s.started))
			extra = fmt.Sprintf("attempt %d", s.attempt)
			if s.note != "" {
				extra += "  " + s.note
			}
		case record.Pending:
		default:
			if s.status != record.Skipped && s.status != record.Excluded && s.status != record.Cached {
				elapsed = fmtElapsed(s.elapsed)
			}
			extra = s.note
		}
		text := fmt.Sprintf("%-*s  %-11s %7s  %s", nameW, n, s.status, elapsed, extra)
		text = strings.TrimRight(truncate(text, width-4), " ")
		if o.color && color != "" {
			icon = "\x1b[" + color + "m" + icon + "\x1b[0m"
		}
		lines = append(lines, "  "+icon+" "+text)
	}
	if o.notice != "" {
		lines = append(lines, truncate(o.notice, width))
	}
	return lines
}

// Notice shows msg under the stages, where a line printed on its own
// would be overwritten by the next redraw.
func (o *ttyOutput) Notice(msg string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notice = msg
	o.draw()
}

func statusIcon(s record.Status, tick int) (icon, color string) {
	switch s {
	case record.Running:
		return spinner[tick%len(spinner)], "33"
	case record.Succeeded:
		return "✓", "32"
	case record.Cached:
		return "✓", "34"
	case record.Failed:
		return "✗", "31"
	case record.Cancelled, record.Interrupted:
		return "⊘", "33"
	case record.Skipped, record.Excluded:
		return "-", "90"
	}
	return "·", "90"
}

func truncate(s string, n int) string {
	if n <= 1 {
		return s
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// draw redraws the block in place.
func (o *ttyOutput) draw() {
	if o.title == "" {
		return
	}
	var b strings.Builder
	if o.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", o.drawn)
	}
	lines := o.frame(o.now(), termWidth(o.fd))
	for _, l := range lines {
		b.WriteString("\r\x1b[2K" + l + "\n")
	}
	// A frame never shrinks; clear what a "^C" echo or a longer frame
	// left below it.
	b.WriteString("\x1b[J")
	o.drawn = len(lines)
	io.WriteString(o.w, b.String())
}

func (o *ttyOutput) Close(rec *record.Run) {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	o.draw()
	o.mu.Unlock()
	if e := rec.Error; e != nil && e.Stage != "" {
		if recs, err := o.records(); err == nil {
			if lines, err := recs.ReadLog(rec.ID, e.Stage, 0); err == nil {
				fmt.Fprintf(o.w, "\nlast lines of %s's log (pipectl logs %s %s):\n", e.Stage, rec.ID, e.Stage)
				for _, l := range lines[max(0, len(lines)-15):] {
					fmt.Fprintln(o.w, "  "+l.Raw)
				}
			}
		}
	}
	fmt.Fprintln(o.w)
	summarize(rec).writeText(o.stdout)
}
