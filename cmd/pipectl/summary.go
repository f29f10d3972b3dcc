package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/engine/record"
)

// runSummary is what people want to know about a finished run, read from
// its record: the same facts feed the terminal summary, `runs show` and the
// GitHub step summary.
type runSummary struct {
	Rec    *record.Run
	Status record.Status
	Stages []stageRow
	// Models are the train stages that produced a model.
	Models      []modelRow
	MetricNames []string
	Champion    *championRow
	Predictions []predictionRow
	Links       []linkRow
	// Skipped are the stages skipped because an upstream stage failed;
	// AlsoFailed the failed stages other than the root cause.
	Skipped    []string
	AlsoFailed []string
}

type stageRow struct {
	Name, Type string
	Status     record.Status
	Duration   string
	Attempts   int
	Note       string
}

type modelRow struct {
	Stage, Name, Version, Type, URI string
	Cached                          bool
	Metrics                         map[string]float64
}

type championRow struct {
	Stage, Decision, Name, Version, URI string
	CandidateURI                        string
	// Tie is the evaluate stage's explanation of a tie that decided it
	// (its optional output "tie").
	Tie     string
	Metrics map[string]float64
}

type predictionRow struct {
	Stage, Path, Rows, Model string
	// Scored says what the metrics are on: the labelled rows of a split
	// ("holdout split") or of an input file; Metrics are empty when the
	// input had no labels.
	Scored  string
	Metrics map[string]float64
}

// scores lists an inference stage's metrics on labelled rows, usual
// classification metrics first, with what they were measured on.
func (p *predictionRow) scores() string {
	var parts []string
	seen := map[string]bool{"rows": true} // the row count is already on the line above
	for _, k := range append(slices.Clone(metricOrder), slices.Sorted(maps.Keys(p.Metrics))...) {
		if v, ok := p.Metrics[k]; ok && !seen[k] {
			seen[k] = true
			parts = append(parts, k+" "+fmtMetric(v))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return p.Scored + ": " + strings.Join(parts, ", ")
}

// scoredOn names what an inference stage scored, from its parameters.
func scoredOn(params map[string]string) string {
	if in := params["input_path"]; in != "" {
		return "labelled rows of " + in
	}
	if split := params["split"]; split != "" {
		return split + " split"
	}
	return "holdout split"
}

type linkRow struct {
	Stage string
	executor.Link
}

// metricOrder puts the usual classification metrics first.
var metricOrder = []string{"accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc_ovr"}

func summarize(rec *record.Run) *runSummary {
	s := &runSummary{Rec: rec, Status: rec.Effective()}
	metricSet := map[string]bool{}
	for _, name := range rec.Order {
		st := rec.Stages[name]
		if st == nil {
			continue
		}
		row := stageRow{Name: name, Type: st.Type, Status: st.Status, Attempts: len(st.Attempts), Duration: "-"}
		if st.Status == record.Running && s.Status == record.Interrupted {
			row.Status = record.Interrupted
		}
		if !st.StartedAt.IsZero() && !st.EndedAt.IsZero() && st.Status != record.Cached {
			row.Duration = fmtElapsed(time.Duration(st.DurationMS) * time.Millisecond)
		}
		switch {
		case st.Error != nil:
			row.Note = st.Error.Message
		case st.Status == record.Cached && st.Cache != nil && st.Cache.FromRun != "":
			row.Note = "outputs of run " + st.Cache.FromRun
		case st.Reason != "":
			row.Note = st.Reason
		}
		s.Stages = append(s.Stages, row)
		if st.Status == record.Skipped && strings.HasPrefix(st.Reason, "upstream ") {
			s.Skipped = append(s.Skipped, name)
		}
		if st.Status == record.Failed && (rec.Error == nil || rec.Error.Stage != name) {
			s.AlsoFailed = append(s.AlsoFailed, name)
		}
		if !st.Status.Done() {
			continue
		}
		o := st.Outputs
		// The models and predictions tables read outputs of the built-in
		// stage types of schemas/stages.cue.
		switch st.Type {
		case "train":
			if o["model_uri"] == "" && o["model_version"] == "" {
				continue
			}
			m := modelRow{Stage: name, Name: o["model_name"], Version: o["model_version"], Type: o["model_type"], URI: o["model_uri"],
				Cached: st.Status == record.Cached, Metrics: st.Metrics}
			for k := range st.Metrics {
				metricSet[k] = true
			}
			s.Models = append(s.Models, m)
		case "evaluate":
			if s.Champion == nil && o["decision"] != "" {
				s.Champion = &championRow{Stage: name, Decision: o["decision"], Name: o["model_name"], Version: o["model_version"],
					URI: o["model_uri"], CandidateURI: o["candidate_uri"], Tie: o["tie"], Metrics: st.Metrics}
			}
		case "inference":
			if o["predictions_path"] != "" {
				s.Predictions = append(s.Predictions, predictionRow{Stage: name, Path: o["predictions_path"], Rows: o["rows"], Model: o["model_uri"],
					Scored: scoredOn(st.Params), Metrics: st.Metrics})
			}
		}
		for _, l := range st.Links {
			s.Links = append(s.Links, linkRow{Stage: name, Link: l})
		}
	}
	for _, m := range metricOrder {
		if metricSet[m] {
			s.MetricNames = append(s.MetricNames, m)
			delete(metricSet, m)
		}
	}
	s.MetricNames = append(s.MetricNames, slices.Sorted(maps.Keys(metricSet))...)
	return s
}

// modelVersion is the version a run leaves for downstream consumers: the
// champion after evaluation, else the only trained model.
func (s *runSummary) modelVersion() (name, version, uri string) {
	if c := s.Champion; c != nil {
		return c.Name, c.Version, c.URI
	}
	if len(s.Models) == 1 {
		m := s.Models[0]
		return m.Name, m.Version, m.URI
	}
	return "", "", ""
}

// fmtElapsed prints a duration for people: 0.4s, 12s, 2m05s, 1h02m.
func fmtElapsed(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func fmtMetric(v float64) string {
	if v == float64(int64(v)) && v < 1e12 && v > -1e12 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

// headline is the one line that says how a run ended.
func (s *runSummary) headline() string {
	r := s.Rec
	return fmt.Sprintf("run %s %s in %s: %s on %s", r.ID, s.Status, fmtElapsed(time.Duration(r.DurationMS)*time.Millisecond), r.Pipeline, r.Target)
}

// writeText prints the summary for a terminal or a log.
func (s *runSummary) writeText(w io.Writer) {
	var b strings.Builder
	s.writeTextTo(&b)
	io.WriteString(w, trimLines(b.String()))
}

// trimLines drops the spaces tabwriter leaves after an empty last column.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func (s *runSummary) writeTextTo(w io.Writer) {
	fmt.Fprintln(w, s.headline())
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tTYPE\tSTATUS\tDURATION\tATTEMPTS\tNOTE")
	for _, r := range s.Stages {
		attempts := "-"
		if r.Attempts > 0 {
			attempts = strconv.Itoa(r.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Type, r.Status, r.Duration, attempts, oneLine(r.Note, 70))
	}
	tw.Flush()
	if len(s.Models) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Trained models")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprint(tw, "STAGE\tMODEL\tVERSION\tTYPE")
		for _, m := range s.MetricNames {
			fmt.Fprint(tw, "\t"+m)
		}
		fmt.Fprintln(tw)
		for _, m := range s.Models {
			version := orDash(m.Version)
			if m.Cached {
				version += " (cached)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s", m.Stage, orDash(m.Name), version, orDash(m.Type))
			for _, k := range s.MetricNames {
				v, ok := m.Metrics[k]
				if ok {
					fmt.Fprint(tw, "\t"+fmtMetric(v))
				} else {
					fmt.Fprint(tw, "\t-")
				}
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if c := s.Champion; c != nil {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Champion: %s\n", c.sentence())
		if scores := c.scores(); scores != "" {
			fmt.Fprintf(w, "  %s\n", scores)
		}
		if c.Tie != "" {
			fmt.Fprintf(w, "  %s\n", c.Tie)
		}
	}
	for _, p := range s.Predictions {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Predictions (%s): %s%s\n", p.Stage, p.Path, rowsNote(p.Rows))
		if scores := p.scores(); scores != "" {
			fmt.Fprintf(w, "  %s\n", scores)
		}
	}
	if len(s.Links) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Links")
		for _, l := range s.Links {
			fmt.Fprintf(w, "  %s: %s %s\n", l.Stage, l.Label, l.URL)
		}
	}
	if e := s.Rec.Error; e != nil && s.Status != record.Succeeded {
		fmt.Fprintln(w)
		if e.Stage != "" {
			fmt.Fprintf(w, "Failed: stage %s: %s\n", e.Stage, e.Message)
			if len(s.AlsoFailed) > 0 {
				fmt.Fprintf(w, "  also failed: %s\n", strings.Join(s.AlsoFailed, ", "))
			}
			if len(s.Skipped) > 0 {
				fmt.Fprintf(w, "  skipped (upstream failed): %s\n", strings.Join(s.Skipped, ", "))
			}
			fmt.Fprintf(w, "  log: pipectl logs %s %s\n", s.Rec.ID, e.Stage)
		} else {
			fmt.Fprintf(w, "Stopped: %s\n", e.Message)
		}
		if e.UserError {
			fmt.Fprintln(w, "  the stage's input or parameters are at fault: fix them and start a new run")
		} else {
			fmt.Fprintf(w, "  resume: pipectl run %s --resume %s\n", s.Rec.Pipeline, s.Rec.ID)
		}
	}
}

// sentence says what the evaluation decided.
func (c *championRow) sentence() string {
	model := fmt.Sprintf("%s version %s", orDash(c.Name), orDash(c.Version))
	switch c.Decision {
	case "promoted":
		return fmt.Sprintf("promoted %s (%s)", model, c.URI)
	case "kept":
		return fmt.Sprintf("kept %s (%s); candidate %s was not better", model, c.URI, orDash(c.CandidateURI))
	case "first":
		return fmt.Sprintf("first champion: %s (%s)", model, c.URI)
	}
	return fmt.Sprintf("%s: %s (%s)", c.Decision, model, c.URI)
}

func (c *championRow) scores() string {
	var parts []string
	for _, k := range []string{"candidate_score", "champion_score", "delta"} {
		if v, ok := c.Metrics[k]; ok {
			parts = append(parts, k+" "+fmtMetric(v))
		}
	}
	return strings.Join(parts, ", ")
}

func rowsNote(rows string) string {
	if rows == "" {
		return ""
	}
	return " (" + rows + " rows)"
}

// orDash (executors_cmd.go) prints "-" for an empty value.

// oneLine keeps the first line of s, at most n runes.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
