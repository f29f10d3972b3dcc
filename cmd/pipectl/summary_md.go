package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/record"
)

var statusEmoji = map[record.Status]string{
	record.Succeeded: "✅", record.Cached: "♻️", record.Failed: "❌", record.Cancelled: "⏹️",
	record.Skipped: "⏭️", record.Excluded: "➖", record.Interrupted: "⚠️", record.Pending: "⏳", record.Running: "🔄",
}

// mermaidClass maps a stage status to the classes engine/dag colours.
var mermaidClass = map[record.Status]string{
	record.Succeeded: "succeeded", record.Cached: "cached", record.Failed: "failed", record.Cancelled: "cancelled",
	record.Interrupted: "cancelled", record.Skipped: "skipped", record.Excluded: "skipped",
	record.Running: "running", record.Pending: "pending",
}

// writeMarkdown renders the GitHub step summary: headline, the DAG as a
// Mermaid diagram coloured by status, the stage table, trained models with
// their metrics, the champion decision, predictions, links and the
// failure.
func (s *runSummary) writeMarkdown(w io.Writer, g *dag.Graph) {
	r := s.Rec
	fmt.Fprintf(w, "## %s pipectl: `%s` on `%s` %s\n\n", statusEmoji[s.Status], r.Pipeline, r.Target, s.Status)
	meta := []string{"run `" + r.ID + "`", fmtElapsed(time.Duration(r.DurationMS) * time.Millisecond), "spec `" + shortHash(r.SpecHash) + "`"}
	if r.GitCommit != "" {
		meta = append(meta, "commit `"+shortHash(r.GitCommit)+"`")
	}
	meta = append(meta, "pipectl "+r.PipectlVersion)
	fmt.Fprintf(w, "%s\n\n", strings.Join(meta, " · "))

	if g != nil {
		labels := map[string]dag.Label{}
		for _, row := range s.Stages {
			text := string(row.Status)
			if row.Duration != "-" {
				text += " · " + row.Duration
			}
			labels[row.Name] = dag.Label{Text: text, Class: mermaidClass[row.Status]}
		}
		fmt.Fprintf(w, "```mermaid\n%s```\n\n", g.Mermaid(labels))
	}

	fmt.Fprintln(w, "### Stages")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Stage | Type | Status | Duration | Attempts | Note |")
	fmt.Fprintln(w, "|---|---|---|---|---:|---|")
	for _, row := range s.Stages {
		attempts := "–"
		if row.Attempts > 0 {
			attempts = strconv.Itoa(row.Attempts)
		}
		fmt.Fprintf(w, "| `%s` | %s | %s %s | %s | %s | %s |\n", row.Name, row.Type, statusEmoji[row.Status], row.Status,
			row.Duration, attempts, mdCell(oneLine(row.Note, 120)))
	}

	if len(s.Models) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Trained models")
		fmt.Fprintln(w)
		fmt.Fprint(w, "| Stage | Model | Version | Type |")
		sep := "|---|---|---|---|"
		for _, m := range s.MetricNames {
			fmt.Fprintf(w, " %s |", m)
			sep += "---:|"
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, sep)
		for _, m := range s.Models {
			version := orDash(m.Version)
			if m.Cached {
				version += " (cached)"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s | %s |", m.Stage, mdCell(orDash(m.Name)), mdCell(version), mdCell(orDash(m.Type)))
			best := s.best(m.Stage)
			for _, k := range s.MetricNames {
				v, ok := m.Metrics[k]
				switch {
				case !ok:
					fmt.Fprint(w, " – |")
				case best[k]:
					fmt.Fprintf(w, " **%s** |", fmtMetric(v))
				default:
					fmt.Fprintf(w, " %s |", fmtMetric(v))
				}
			}
			fmt.Fprintln(w)
		}
	}

	if c := s.Champion; c != nil {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Champion")
		fmt.Fprintln(w)
		model := fmt.Sprintf("`%s` version **%s** (`%s`)", orDash(c.Name), orDash(c.Version), c.URI)
		switch c.Decision {
		case "promoted":
			fmt.Fprintf(w, "**Promoted** %s to champion.", model)
		case "kept":
			fmt.Fprintf(w, "**Kept** the champion %s; candidate `%s` was not better.", model, orDash(c.CandidateURI))
		case "first":
			fmt.Fprintf(w, "**First champion:** %s.", model)
		default:
			fmt.Fprintf(w, "**%s:** %s.", mdCell(c.Decision), model)
		}
		if scores := c.scores(); scores != "" {
			fmt.Fprintf(w, " %s.", scores)
		}
		if c.Tie != "" {
			fmt.Fprintf(w, " %s.", mdCell(c.Tie))
		}
		fmt.Fprintln(w)
	}

	if len(s.Predictions) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Predictions")
		fmt.Fprintln(w)
		for _, p := range s.Predictions {
			fmt.Fprintf(w, "- `%s`: `%s`%s", p.Stage, p.Path, rowsNote(p.Rows))
			if p.Model != "" {
				fmt.Fprintf(w, " with `%s`", p.Model)
			}
			if scores := p.scores(); scores != "" {
				fmt.Fprintf(w, "; %s", scores)
			}
			fmt.Fprintln(w)
		}
	}

	if len(s.Links) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Links")
		fmt.Fprintln(w)
		for _, l := range s.Links {
			fmt.Fprintf(w, "- `%s`: [%s](%s)\n", l.Stage, mdCell(l.Label), l.URL)
		}
	}

	if e := r.Error; e != nil && s.Status != record.Succeeded {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Failure")
		fmt.Fprintln(w)
		if e.Stage != "" {
			fmt.Fprintf(w, "**Stage `%s` failed:** %s\n", e.Stage, mdCell(e.Message))
		} else {
			fmt.Fprintf(w, "**Stopped:** %s\n", mdCell(e.Message))
		}
		if e.Detail != "" && !e.UserError {
			fmt.Fprintf(w, "\n<details><summary>Detail</summary>\n\n```\n%s\n```\n\n</details>\n", strings.TrimRight(e.Detail, "\n"))
		}
		if len(s.AlsoFailed) > 0 {
			fmt.Fprintf(w, "\nAlso failed: %s.\n", "`"+strings.Join(s.AlsoFailed, "`, `")+"`")
		}
		if len(s.Skipped) > 0 {
			fmt.Fprintf(w, "\nSkipped because an upstream stage failed: %s.\n", "`"+strings.Join(s.Skipped, "`, `")+"`")
		}
		if e.UserError {
			fmt.Fprintln(w, "\nThe stage's input or parameters are at fault: fix them and start a new run.")
		} else {
			fmt.Fprintf(w, "\nResume with `pipectl run %s --resume %s`.\n", r.Pipeline, r.ID)
		}
	}
	fmt.Fprintln(w)
}

// best marks, for a model's stage, the metrics in which it is the best of
// the trained models (higher is better for every metric pipectl reports).
func (s *runSummary) best(stage string) map[string]bool {
	out := map[string]bool{}
	if len(s.Models) < 2 {
		return out
	}
	for _, k := range s.MetricNames {
		top, who, ties := 0.0, "", 0
		for _, m := range s.Models {
			v, ok := m.Metrics[k]
			switch {
			case !ok:
			case who == "" || v > top:
				top, who, ties = v, m.Stage, 1
			case v == top:
				ties++
			}
		}
		out[k] = who == stage && ties == 1 // a tie has no best
	}
	return out
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
