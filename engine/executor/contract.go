package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// This file is the stage contract of docs/STAGES.md, in one place: the
// context parameters every notebook receives, and the exit value every
// notebook returns. The outputs each stage type promises come from the
// schemas (#StageTypes in schemas/stages.cue) and reach executors in
// [Task.Outputs].

// ContextParamNames are the context parameters executors set on every
// notebook, in the order they are passed.
var ContextParamNames = []string{
	"pipectl_run_id", "pipectl_pipeline", "pipectl_stage", "pipectl_target",
	"data_root", "output_root", "project_root", "mlflow_tracking_uri", "mlflow_registry_uri",
	"experiment_root", "uc_catalog", "uc_schema", "git_commit",
}

// Place is where an executor runs a stage: the values of the context
// parameters that the [Task] does not carry. Empty fields are passed as
// empty strings (the notebook's default applies).
type Place struct {
	DataRoot    string
	OutputRoot  string
	ProjectRoot string
	TrackingURI string
	RegistryURI string
	// ExperimentRoot, Catalog and Schema are Databricks' (empty locally).
	ExperimentRoot string
	Catalog        string
	Schema         string
}

// ContextParams returns the context parameters of a task run at place.
func ContextParams(t Task, place Place) map[string]string {
	return map[string]string{
		"pipectl_run_id":      t.RunID,
		"pipectl_pipeline":    t.Pipeline,
		"pipectl_stage":       t.Stage,
		"pipectl_target":      t.Target,
		"data_root":           place.DataRoot,
		"output_root":         place.OutputRoot,
		"project_root":        place.ProjectRoot,
		"mlflow_tracking_uri": place.TrackingURI,
		"mlflow_registry_uri": place.RegistryURI,
		"experiment_root":     place.ExperimentRoot,
		"uc_catalog":          place.Catalog,
		"uc_schema":           place.Schema,
		"git_commit":          t.GitCommit,
	}
}

// NotebookParams returns every parameter a notebook receives: the task's
// own and the context parameters, which win (a spec never sets them).
func NotebookParams(t Task, place Place) map[string]string {
	out := maps.Clone(t.Params)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, ContextParams(t, place))
	return out
}

// DeltaLog is the directory inside a Delta table that makes it one.
const DeltaLog = "_delta_log"

// IsDeltaTable reports whether an output path (predictions_path) names a
// Delta table, a directory whose name ends in ".delta" (what a stage run
// with engine "spark" writes), rather than a file. An executor checking the
// output looks for its [DeltaLog] then.
func IsDeltaTable(path string) bool {
	return strings.HasSuffix(strings.TrimRight(path, "/"), ".delta")
}

// ExitValue is what a notebook passes to dbutils.notebook.exit, parsed:
// outputs as the strings downstream parameters receive, and the metrics
// that are finite numbers.
type ExitValue struct {
	Outputs map[string]string
	Metrics map[string]float64
	// Warnings say what was changed or left out: a NaN or Infinity
	// (passed on as null), a metric that is not a finite number.
	Warnings []string
}

// ExitValueShape is the exit value in words, for messages.
const ExitValueShape = `{"outputs": {...}, "metrics": {...}}`

// nonFinite marks, inside the parser, where Python's json.dumps wrote NaN,
// Infinity or -Infinity (which JSON forbids); the NUL keeps it apart from
// any string a notebook can return.
const nonFinite = "\x00pipectl-non-finite:"

// ParseExitValue parses a notebook's exit value (docs/STAGES.md). The rules,
// the same for every executor:
//   - NaN, Infinity and -Infinity (Python's json.dumps writes them) become
//     null, with a warning;
//   - a metric that is not a finite number is left out, with a warning that
//     names it;
//   - an output is a string as it is, anything else compact JSON;
//   - every output in promised must be present, or the exit value is an
//     error naming the missing ones.
func ParseExitValue(b []byte, promised []string) (ExitValue, error) {
	var raw struct {
		Outputs map[string]json.RawMessage `json:"outputs"`
		Metrics map[string]json.RawMessage `json:"metrics"`
	}
	if err := json.Unmarshal(markNonFinite(b), &raw); err != nil {
		return ExitValue{}, fmt.Errorf("the exit value is not a JSON object %s: %v", ExitValueShape, err)
	}
	ev := ExitValue{Outputs: make(map[string]string, len(raw.Outputs)), Metrics: make(map[string]float64, len(raw.Metrics))}
	for _, k := range slices.Sorted(maps.Keys(raw.Outputs)) {
		s, changed := outputString(raw.Outputs[k])
		if changed {
			ev.Warnings = append(ev.Warnings, fmt.Sprintf("output %s holds NaN or Infinity, which JSON has not; it is passed on as null", k))
		}
		ev.Outputs[k] = s
	}
	for _, k := range slices.Sorted(maps.Keys(raw.Metrics)) {
		v := bytes.TrimSpace(raw.Metrics[k])
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			ev.Warnings = append(ev.Warnings, fmt.Sprintf("metric %s = %s is not a finite number; it is left out", k, unmark(string(v))))
			continue
		}
		ev.Metrics[k] = f
	}
	var lacking []string
	for _, k := range promised {
		if _, ok := ev.Outputs[k]; !ok {
			lacking = append(lacking, k)
		}
	}
	if len(lacking) > 0 {
		return ev, fmt.Errorf("the exit value lacks the output(s) %s that the stage promises (docs/STAGES.md)", strings.Join(lacking, ", "))
	}
	return ev, nil
}

// outputString renders an output value as a parameter string: strings as
// they are, everything else as compact JSON (numbers as written, true,
// null, lists and objects). changed reports a NaN or Infinity turned null.
func outputString(raw json.RawMessage) (s string, changed bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			if strings.HasPrefix(str, nonFinite) {
				return "null", true
			}
			return str, false
		}
	}
	// Inside lists and objects, the marks go back to null.
	var v any
	if json.Unmarshal(raw, &v) == nil {
		v, changed = nullNonFinite(v)
		if !changed {
			var buf bytes.Buffer
			if json.Compact(&buf, raw) == nil {
				return buf.String(), false
			}
		}
		if out, err := json.Marshal(v); err == nil {
			return string(out), changed
		}
	}
	return string(raw), false
}

func nullNonFinite(v any) (any, bool) {
	changed := false
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, nonFinite) {
			return nil, true
		}
	case []any:
		for i, e := range x {
			var c bool
			x[i], c = nullNonFinite(e)
			changed = changed || c
		}
	case map[string]any:
		for k, e := range x {
			var c bool
			x[k], c = nullNonFinite(e)
			changed = changed || c
		}
	}
	return v, changed
}

// unmark shows a marked value as the notebook wrote it.
func unmark(s string) string {
	var str string
	if json.Unmarshal([]byte(s), &str) == nil && strings.HasPrefix(str, nonFinite) {
		return strings.TrimPrefix(str, nonFinite)
	}
	return s
}

// markNonFinite replaces the NaN, Infinity and -Infinity that Python's
// json.dumps writes by default, outside strings, with marked strings.
func markNonFinite(b []byte) []byte {
	if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
		return b
	}
	var out bytes.Buffer
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
		}
		replaced := false
		for _, tok := range []string{"NaN", "-Infinity", "Infinity"} {
			if bytes.HasPrefix(b[i:], []byte(tok)) {
				out.WriteString(`"\u0000pipectl-non-finite:` + tok + `"`)
				i += len(tok) - 1
				replaced = true
				break
			}
		}
		if !replaced {
			out.WriteByte(c)
		}
	}
	return out.Bytes()
}
