package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// exitValue is what a stage notebook passes to dbutils.notebook.exit.
type exitValue struct {
	Outputs map[string]json.RawMessage `json:"outputs"`
	Metrics map[string]json.RawMessage `json:"metrics"`
}

// parseExitValue turns the runner's --output file into outputs (strings, as
// downstream parameters need them: docs/STAGES.md) and metrics. Skipped
// metrics (not numbers) are returned as warnings.
func parseExitValue(b []byte) (outputs map[string]string, metrics map[string]float64, warnings []string, err error) {
	var v exitValue
	dec := json.NewDecoder(bytes.NewReader(pythonJSON(b)))
	if err := dec.Decode(&v); err != nil {
		return nil, nil, nil, fmt.Errorf(`the exit value is not a JSON object {"outputs": {...}, "metrics": {...}}: %v`, err)
	}
	outputs = make(map[string]string, len(v.Outputs))
	for k, raw := range v.Outputs {
		outputs[k] = stringify(raw)
	}
	metrics = make(map[string]float64, len(v.Metrics))
	for _, k := range sortedKeys(v.Metrics) {
		raw := bytes.TrimSpace(v.Metrics[k])
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			warnings = append(warnings, fmt.Sprintf("metric %s = %s is not a finite number; it is left out", k, raw))
			continue
		}
		metrics[k] = f
	}
	return outputs, metrics, warnings, nil
}

// stringify renders an output value as a parameter string: strings as they
// are, everything else as compact JSON (numbers as written, true, null,
// lists and objects).
func stringify(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// pythonJSON replaces the NaN, Infinity and -Infinity that Python's
// json.dumps writes by default (and JSON forbids) with null, outside
// strings.
func pythonJSON(b []byte) []byte {
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
		switch {
		case c == '"':
			inString = true
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out.WriteString("null")
			i += len("NaN") - 1
			continue
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out.WriteString("null")
			i += len("-Infinity") - 1
			continue
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out.WriteString("null")
			i += len("Infinity") - 1
			continue
		}
		out.WriteByte(c)
	}
	return out.Bytes()
}

// runnerError is the runner's --error-output file: the shape of
// Databricks' runs/get-output.
type runnerError struct {
	Error      string `json:"error"`
	ErrorTrace string `json:"error_trace"`
	Cell       int    `json:"cell"`
	// UserError and Message: the notebook raised an error marked as the
	// user's (docs/STAGES.md, "The local runner"); Message is its text
	// alone, without the exception's type.
	UserError bool   `json:"user_error"`
	Message   string `json:"message"`
}

// maxDetail bounds a failure's Detail (the tail of a traceback).
const (
	maxDetailLines = 30
	maxDetailBytes = 8 << 10
)

// tailText keeps the last lines of s within the Detail bounds.
func tailText(s string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > maxDetailLines {
		lines = append([]string{"..."}, lines[len(lines)-maxDetailLines:]...)
	}
	s = strings.Join(lines, "\n")
	if len(s) > maxDetailBytes {
		s = "..." + s[len(s)-maxDetailBytes:]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// oneLine joins a multi-line message and bounds its length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:497] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
