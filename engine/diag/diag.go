package diag

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// Severity says whether a diagnostic stops the command.
type Severity int

const (
	// Error makes the spec invalid: nothing runs.
	Error Severity = iota
	// Warning is printed but does not change the exit code.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Pos is a position in a source file. The zero Pos means "unknown".
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// IsValid reports whether the position names a file.
func (p Pos) IsValid() bool { return p.File != "" }

// String renders the position as FILE:LINE:COL, or FILE when the line is
// unknown.
func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// Diagnostic is one problem for a person to fix.
type Diagnostic struct {
	Severity Severity `json:"-"`
	// Summary is one line, lower case, without trailing punctuation.
	Summary string `json:"summary"`
	// Detail adds context on following lines, when the summary is not enough.
	Detail string `json:"detail,omitempty"`
	// Path is the field path in the spec, e.g.
	// pipelines.demo.stages.data.params.test_size.
	Path string `json:"path,omitempty"`
	// Pos is where the problem is in the user's files.
	Pos Pos `json:"pos"`
	// Fix says what to change, when that is obvious.
	Fix string `json:"fix,omitempty"`
}

// Diagnostics is a list of problems, in no particular order until sorted.
type Diagnostics []Diagnostic

// Errorf returns an error diagnostic at pos for the field path.
func Errorf(pos Pos, path string, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: Error, Pos: pos, Path: path, Summary: fmt.Sprintf(format, args...)}
}

// WithFix returns d with a fix.
func (d Diagnostic) WithFix(format string, args ...any) Diagnostic {
	d.Fix = fmt.Sprintf(format, args...)
	return d
}

// WithDetail returns d with a detail.
func (d Diagnostic) WithDetail(format string, args ...any) Diagnostic {
	d.Detail = fmt.Sprintf(format, args...)
	return d
}

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == Error })
}

// Errors returns only the error diagnostics.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders diagnostics by file, line, column, then path and summary, and
// drops exact duplicates (the same problem found by two checks).
func (ds Diagnostics) Sort() Diagnostics {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Summary, b.Summary),
		)
	})
	return slices.CompactFunc(ds, func(a, b Diagnostic) bool {
		return a.Pos == b.Pos && a.Path == b.Path && a.Summary == b.Summary
	})
}

// Error lets Diagnostics travel as an error where code needs one; people
// should see Render's output instead.
func (ds Diagnostics) Error() string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(d.Line(""))
	}
	return b.String()
}

// Line renders the first line of d: "FILE:LINE:COL: summary", with
// "warning: " before the summary for warnings. Paths are made relative to
// dir when possible.
func (d Diagnostic) Line(dir string) string {
	var b strings.Builder
	if p := RelPos(d.Pos, dir); p.IsValid() {
		b.WriteString(p.String())
		b.WriteString(": ")
	}
	if d.Severity == Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Summary)
	return b.String()
}

// RelPos returns p with its file made relative to dir, when dir is set and
// the file is below it.
func RelPos(p Pos, dir string) Pos {
	if dir == "" || !filepath.IsAbs(p.File) {
		return p
	}
	if rel, err := filepath.Rel(dir, p.File); err == nil && !strings.HasPrefix(rel, "..") {
		p.File = rel
	}
	return p
}

// Render writes diagnostics for people:
//
//	specs/demo.cue:12:15: test_size must be below 1 (got 1.5)
//	    field: pipelines.demo.stages.data.params.test_size
//	    fix: sizes are fractions of the whole dataset, e.g. 0.2
//
// File names are relative to dir.
func Render(w io.Writer, ds Diagnostics, dir string) {
	for _, d := range ds {
		fmt.Fprintln(w, d.Line(dir))
		if d.Path != "" {
			fmt.Fprintf(w, "    field: %s\n", d.Path)
		}
		for _, line := range strings.Split(strings.TrimSpace(d.Detail), "\n") {
			if line != "" {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
		if d.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", d.Fix)
		}
	}
}

// Summary returns "N errors" / "1 error, 2 warnings" for the end of a report.
func (ds Diagnostics) Summary() string {
	var errs, warns int
	for _, d := range ds {
		if d.Severity == Error {
			errs++
		} else {
			warns++
		}
	}
	parts := []string{plural(errs, "error")}
	if warns > 0 {
		parts = append(parts, plural(warns, "warning"))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
