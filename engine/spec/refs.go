package spec

import (
	"fmt"
	"regexp"
	"strings"
)

// Ref is a reference inside a parameter: to an upstream stage's output,
// "${stages.<stage>.outputs.<key>}", or to a property of the run,
// "${run.<field>}" (see RunFields).
type Ref struct {
	// Stage and Output are set for output references.
	Stage  string
	Output string
	// Run is set for run references: "id" or "date".
	Run string
	// Text is the reference as written, "${...}" included.
	Text string
}

// RunFields are the run properties a parameter may reference: the pipectl
// run id, and the run's start date in UTC (YYYY-MM-DD), e.g. to version
// the data of a scheduled run. Deployed Databricks jobs render them as
// {{job.run_id}} and {{job.start_time.iso_date}}.
var RunFields = []string{"date", "id"}

func (r Ref) String() string { return r.Text }

// RefText returns the reference syntax for stage's output key.
func RefText(stage, key string) string {
	return "${stages." + stage + ".outputs." + key + "}"
}

var (
	refAny  = regexp.MustCompile(`\$\{[^}]*\}?`)
	refForm = regexp.MustCompile(`^\$\{stages\.([A-Za-z][A-Za-z0-9_-]*)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)\}$`)
	runForm = regexp.MustCompile(`^\$\{run\.(date|id)\}$`)
)

// RefSyntaxError is a "${...}" that is not a valid reference.
type RefSyntaxError struct{ Text string }

func (e *RefSyntaxError) Error() string {
	return fmt.Sprintf("malformed reference %q: write ${stages.<stage>.outputs.<key>}, ${run.date} or ${run.id}", e.Text)
}

// parseRef parses one "${...}".
func parseRef(text string) (Ref, error) {
	if m := refForm.FindStringSubmatch(text); m != nil {
		return Ref{Stage: m[1], Output: m[2], Text: text}, nil
	}
	if m := runForm.FindStringSubmatch(text); m != nil {
		return Ref{Run: m[1], Text: text}, nil
	}
	return Ref{}, &RefSyntaxError{Text: text}
}

// ParseRefs finds the references in s. A "${" that does not form a valid
// reference is a *RefSyntaxError; "$${" escapes a literal "${".
func ParseRefs(s string) ([]Ref, error) {
	var refs []Ref
	for _, loc := range refAny.FindAllStringIndex(s, -1) {
		if loc[0] > 0 && s[loc[0]-1] == '$' {
			continue // "$${...}" is a literal
		}
		r, err := parseRef(s[loc[0]:loc[1]])
		if err != nil {
			return refs, err
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// Substitute replaces every reference in s with lookup's value. It fails on
// the first reference that lookup cannot resolve; "$${" becomes "${".
func Substitute(s string, lookup func(Ref) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for _, loc := range refAny.FindAllStringIndex(s, -1) {
		if loc[0] > 0 && s[loc[0]-1] == '$' {
			b.WriteString(s[last : loc[0]-1])
			b.WriteString(s[loc[0]:loc[1]])
			last = loc[1]
			continue
		}
		r, err := parseRef(s[loc[0]:loc[1]])
		if err != nil {
			return "", err
		}
		v, ok := lookup(r)
		if !ok {
			if r.Run != "" {
				return "", fmt.Errorf("reference %s has no value", r)
			}
			return "", fmt.Errorf("reference %s: stage %q has no output %q", r, r.Stage, r.Output)
		}
		b.WriteString(s[last:loc[0]])
		b.WriteString(v)
		last = loc[1]
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// CollectRefs walks a parameter value (string, list, map) and returns every
// reference with the sub-path where it occurs ("" for the value itself).
func CollectRefs(v any) (refs []Ref, errs []error) {
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			r, err := ParseRefs(x)
			refs = append(refs, r...)
			if err != nil {
				errs = append(errs, err)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(x[k])
			}
		}
	}
	walk(v)
	return refs, errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}
