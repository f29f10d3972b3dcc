package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// LogsCmd prints a stage's log of a run.
type LogsCmd struct {
	RunID   string `arg:"" name:"run-id" help:"Run id, a unique prefix of one, or 'latest'."`
	Stage   string `arg:"" help:"Stage name."`
	Attempt int    `name:"attempt" placeholder:"N" help:"Only attempt N (default: every attempt)."`
}

// Run prints the log lines to stdout: "<UTC time> #<attempt> <stream> | <text>".
func (c *LogsCmd) Run(app *App) error {
	rec, err := app.loadRun(c.RunID)
	if err != nil {
		return err
	}
	st := rec.Stages[c.Stage]
	if st == nil {
		return invalidf("run %s has no stage %q (stages: %s)", rec.ID, c.Stage, strings.Join(rec.Order, ", "))
	}
	if c.Attempt < 0 || c.Attempt > len(st.Attempts) {
		return invalidf("stage %s of run %s has no attempt %d (attempts: %d)", c.Stage, rec.ID, c.Attempt, len(st.Attempts))
	}
	recs, err := app.records()
	if err != nil {
		return err
	}
	lines, err := recs.ReadLog(rec.ID, c.Stage, c.Attempt)
	if errors.Is(err, fs.ErrNotExist) {
		why := string(st.Status)
		if st.Reason != "" {
			why += ": " + st.Reason
		}
		return &exitError{code: exitRunFailed, err: fmt.Errorf("stage %s of run %s has no log (%s)", c.Stage, rec.ID, why)}
	}
	if err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(app.Stdout, l.Raw)
	}
	return nil
}
