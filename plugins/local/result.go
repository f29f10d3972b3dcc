package local

import "strings"

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
