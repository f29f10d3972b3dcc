package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/pipectl/pipectl/engine/plan"
	"github.com/pipectl/pipectl/engine/record"
)

// ghError is a GitHub ::error:: workflow command.
func ghError(title, msg string) string {
	return "::error title=" + ghEscapeProperty(title) + "::" + ghEscapeData(msg)
}

func ghEscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghEscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// githubOutputs are the step outputs pipectl run sets, always all of them
// (empty when the run has none), so workflows can rely on the keys.
var githubOutputs = []string{"run_id", "status", "model_name", "model_version", "model_uri", "decision", "predictions_path"}

// writeGitHub appends the run's Markdown summary to $GITHUB_STEP_SUMMARY
// and its outputs to $GITHUB_OUTPUT when running in GitHub Actions.
func (a *App) writeGitHub(rec *record.Run, pl *plan.Plan) {
	if a.Getenv("GITHUB_ACTIONS") != "true" {
		return
	}
	s := summarize(rec)
	if path := a.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		var b strings.Builder
		s.writeMarkdown(&b, pl.Graph)
		if err := appendFile(path, b.String()); err != nil {
			fmt.Fprintf(a.Stderr, "pipectl: warning: cannot write the step summary: %v\n", err)
		}
	}
	if path := a.Getenv("GITHUB_OUTPUT"); path != "" {
		name, version, uri := s.modelVersion()
		values := map[string]string{"run_id": rec.ID, "status": string(s.Status), "model_name": name, "model_version": version, "model_uri": uri}
		if s.Champion != nil {
			values["decision"] = s.Champion.Decision
		}
		if len(s.Predictions) > 0 {
			values["predictions_path"] = s.Predictions[0].Path
		}
		var b strings.Builder
		for _, k := range githubOutputs {
			b.WriteString(ghOutputLine(k, values[k]))
		}
		if err := appendFile(path, b.String()); err != nil {
			fmt.Fprintf(a.Stderr, "pipectl: warning: cannot write step outputs: %v\n", err)
		}
	}
}

// ghOutputLine is name=value, or the heredoc form for a multi-line value.
func ghOutputLine(name, value string) string {
	if !strings.ContainsAny(value, "\r\n") {
		return name + "=" + value + "\n"
	}
	b := make([]byte, 8)
	rand.Read(b)
	delim := "ghadelimiter_" + hex.EncodeToString(b)
	return name + "<<" + delim + "\n" + value + "\n" + delim + "\n"
}

func appendFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
