package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/secret"
)

// cueIssue is one problem reported by CUE at one path, after collapsing the
// per-alternative errors of a failed disjunction.
type cueIssue struct {
	path []string
	msg  string
	// alternatives are the allowed values of a failed disjunction, when all
	// of its errors were conflicts.
	alternatives []string
	got          string
	// types are the [a, b] kinds of each "mismatched types a and b" error.
	types [][2]string
	kind  issueKind
	pos   token.Pos
}

type issueKind int

const (
	kindOther issueKind = iota
	kindNotAllowed
	kindBound
	kindConflict
	kindIncomplete
)

// cueIssues flattens a CUE error into issues, one per path (several when
// CUE reports several distinct problems at one path). The position is the
// first one in the user's files; fallback supplies one otherwise.
//
// valueAt, when not nil, returns the user's value at a path as CUE syntax;
// it names the value in messages that CUE words without it.
func cueIssues(err error, fallback func([]string) token.Pos, valueAt func([]string) string) []cueIssue {
	if err == nil {
		return nil
	}
	type group struct {
		path []string
		errs []errors.Error
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range errors.Errors(err) {
		format, _ := e.Msg()
		if strings.Contains(format, "errors in empty disjunction") {
			continue
		}
		path := unquotePath(e.Path())
		key := strings.Join(path, "\x00")
		g, ok := groups[key]
		if !ok {
			g = &group{path: path}
			groups[key] = g
			order = append(order, key)
		}
		g.errs = append(g.errs, e)
	}
	var out []cueIssue
	for _, key := range order {
		g := groups[key]
		out = append(out, collapse(g.path, g.errs, fallback, valueAt)...)
	}
	return out
}

// collapse turns the errors of one path into issues. A failed disjunction
// yields one error per alternative: when one is a bound or type error it is
// the useful one; when all are conflicts, the alternatives become a list.
func collapse(path []string, errs []errors.Error, fallback func([]string) token.Pos, valueAt func([]string) string) []cueIssue {
	pos := userPos(errs)
	if !pos.IsValid() && fallback != nil {
		pos = fallback(path)
	}
	var bounds, conflicts, others []errors.Error
	for _, e := range errs {
		format, _ := e.Msg()
		switch {
		case strings.HasPrefix(format, "invalid value") || strings.Contains(format, "bound"):
			bounds = append(bounds, e)
		case strings.HasPrefix(format, "conflicting values"):
			conflicts = append(conflicts, e)
		default:
			others = append(others, e)
		}
	}
	var out []cueIssue
	seen := map[string]bool{}
	add := func(is cueIssue) {
		if !seen[is.msg] {
			seen[is.msg] = true
			out = append(out, is)
		}
	}
	for _, e := range others {
		is := cueIssue{path: path, msg: message(e), pos: pos}
		format, _ := e.Msg()
		switch {
		case strings.Contains(format, "not allowed"):
			is.kind = kindNotAllowed
		case strings.HasPrefix(format, "incomplete value"):
			is.kind = kindIncomplete
		case strings.HasPrefix(format, "incompatible list lengths") && valueAt != nil && valueAt(path) == "[]":
			// [] against [x, ...x]: a list that must not be empty.
			is.msg, is.kind = "must not be empty", kindBound
		}
		add(is)
	}
	if len(bounds) > 0 {
		got := ""
		if valueAt != nil {
			got = valueAt(path)
		}
		for _, e := range bounds {
			msg := message(e)
			if format, args := e.Msg(); strings.HasPrefix(format, "incompatible") && len(args) == 2 && got != "" {
				// An int meets a number range: "incompatible integer
				// bounds >0 and <1" says nothing of the value.
				msg = fmt.Sprintf("invalid value %s (out of bound %v and %v)", got, args[0], args[1])
			}
			add(cueIssue{path: path, msg: msg, kind: kindBound, pos: pos})
		}
		return out
	}
	switch len(conflicts) {
	case 0:
	case 1:
		is := cueIssue{path: path, msg: message(conflicts[0]), kind: kindConflict, pos: pos}
		is.types = mismatchedTypes(conflicts)
		if valueAt != nil {
			is.got = valueAt(path)
		}
		add(is)
	default:
		got, alts := alternatives(conflicts)
		is := cueIssue{path: path, msg: message(conflicts[0]), kind: kindConflict, got: got, alternatives: alts, pos: pos}
		is.types = mismatchedTypes(conflicts)
		if valueAt != nil {
			if v := valueAt(path); v != "" {
				is.got = v
			}
		}
		add(is)
	}
	return out
}

// alternatives finds the value common to every "conflicting values A and B"
// error (the user's) and the other side of each (the allowed ones).
func alternatives(errs []errors.Error) (got string, alts []string) {
	count := map[string]int{}
	pairs := make([][2]string, 0, len(errs))
	for _, e := range errs {
		_, args := e.Msg()
		if len(args) < 2 {
			continue
		}
		a, b := fmt.Sprint(args[0]), fmt.Sprint(args[1])
		pairs = append(pairs, [2]string{a, b})
		count[a]++
		if b != a {
			count[b]++
		}
	}
	for v, n := range count {
		if n == len(pairs) && (got == "" || v < got) {
			got = v
		}
	}
	for _, p := range pairs {
		alt := p[0]
		if alt == got {
			alt = p[1]
		}
		if !slices.Contains(alts, alt) {
			alts = append(alts, alt)
		}
	}
	return got, alts
}

func message(e errors.Error) string {
	format, args := e.Msg()
	if msg := fmt.Sprintf(format, args...); msg != "" {
		return msg
	}
	// Wrapped OS errors (e.g. a symlink loop) carry their text in Error,
	// not in Msg.
	return e.Error()
}

// userPos returns the first position of the errors that is in a user file.
func userPos(errs []errors.Error) token.Pos {
	for _, e := range errs {
		if p := e.Position(); isUserPos(p) {
			return p
		}
		for _, p := range e.InputPositions() {
			if isUserPos(p) {
				return p
			}
		}
	}
	return token.NoPos
}

func isUserPos(p token.Pos) bool {
	return p.IsValid() && p.Filename() != "" && !strings.HasPrefix(p.Filename(), schemaDir)
}

func toPos(p token.Pos) diag.Pos {
	if !p.IsValid() {
		return diag.Pos{}
	}
	return diag.Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}

// explain writes a summary and, where obvious, a fix for an issue. field is
// the path shown to the user; validFields lists what the enclosing struct
// accepts (for unknown fields); keyed words them in a keyed parameter;
// schemaFixes holds the fixes the schemas declare on their fields
// (Schema.fixes).
func explain(is cueIssue, field string, validFields []string, keyed keyedBy, schemaFixes map[string]string) (summary, fix string) {
	name := lastElem(is.path)
	switch is.kind {
	case kindNotAllowed:
		parent := ""
		if len(is.path) > 1 {
			parent = is.path[len(is.path)-2]
		}
		valid := without(validFields, name)
		switch {
		case keyed.value != "":
			summary = fmt.Sprintf("unknown %s %q for %s", keyed.noun, name, keyed.value)
			fix = "valid parameters: " + strings.Join(valid, ", ")
		case parent == "databricks" && secret.Name(name):
			summary = fmt.Sprintf("%q is not allowed in a spec: credentials never go in specs", name)
			fix = "remove it; authenticate with DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/SECRET, DATABRICKS_AUTH_TYPE=github-oidc or a profile of ~/.databrickscfg"
		default:
			summary = fmt.Sprintf("unknown field %q", name)
			if len(valid) > 0 {
				fix = "valid fields here: " + strings.Join(valid, ", ")
			}
		}
	case kindBound:
		summary = name + ": " + strings.Replace(is.msg, `(out of bound =~"[1-9]")`, "(must be above zero)", 1)
		fix = fieldFix(name, schemaFixes)
		if len(is.path) > 1 && is.path[len(is.path)-2] == "pass_env" {
			summary = fmt.Sprintf("pass_env[%s]: %s", name, is.msg)
			fix = "pass_env lists environment variable names: letters, digits and _, not starting with a digit"
		}
	case kindConflict:
		if want, gotType, ok := typeMismatch(is); ok {
			summary = fmt.Sprintf("%s: invalid value %s (want %s, got %s)", name, is.got, want, gotType)
			if want == "a whole number" {
				fix = fieldFix(name, schemaFixes)
			}
			break
		}
		if len(is.alternatives) > 1 {
			summary = fmt.Sprintf("%s: invalid value %s", name, is.got)
			fix = "use one of " + strings.Join(is.alternatives, ", ")
		} else {
			summary = name + ": " + is.msg
		}
		if fix == "" {
			fix = fieldFix(name, schemaFixes)
		}
	default:
		summary = is.msg
		if name != "" {
			summary = name + ": " + is.msg
		}
	}
	_ = field
	return summary, fix
}

// boundFix holds the fixes for invalid values of pipectl's own fields;
// stage parameters declare theirs in the schemas, @pipectl(fix="...").
var boundFix = map[string]string{
	"retries":       "retries is a whole number from 0 to 10",
	"timeout":       "write a duration above zero such as 90s, 15m or 2h",
	"retry_backoff": "write a duration such as 10s or 1m",
	"host":          "use the workspace URL, e.g. https://adb-1234567890123456.7.azuredatabricks.net",
}

// fieldFix returns the fix for an invalid value of the field name: pipectl's
// own, else the one the schemas declare, else "".
func fieldFix(name string, schemaFixes map[string]string) string {
	if f, ok := boundFix[name]; ok {
		return f
	}
	return schemaFixes[name]
}

func without(list []string, s string) []string {
	out := make([]string, 0, len(list))
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func lastElem(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return p[len(p)-1]
}

func joinPath(p []string) string { return strings.Join(p, ".") }

// unquotePath turns CUE's quoted labels ("news-train") into plain
// names: field paths in diagnostics are for people, not CUE.
func unquotePath(p []string) []string {
	out := make([]string, len(p))
	for i, e := range p {
		if u, err := strconv.Unquote(e); err == nil && strings.HasPrefix(e, `"`) {
			e = u
		}
		out[i] = e
	}
	return out
}

// missingFields walks v and returns the paths of regular fields that have
// no concrete value (required fields the user did not set). Fields with
// errors are skipped: they are reported as errors already.
func missingFields(v cue.Value, prefix []string) [][]string {
	var out [][]string
	it, err := v.Fields()
	if err != nil {
		return nil
	}
	for it.Next() {
		f := it.Value()
		p := append(slices.Clone(prefix), it.Selector().Unquoted())
		if f.Err() != nil && !isIncomplete(f.Err()) {
			continue
		}
		d, _ := f.Default()
		switch d.IncompleteKind() {
		case cue.StructKind:
			out = append(out, missingFields(d, p)...)
		case cue.ListKind:
			li, err := d.List()
			if err != nil {
				continue
			}
			for i := 0; li.Next(); i++ {
				ev, _ := li.Value().Default()
				if ev.IncompleteKind() == cue.StructKind {
					out = append(out, missingFields(ev, append(slices.Clone(p), fmt.Sprint(i)))...)
				} else if !ev.IsConcrete() {
					out = append(out, append(slices.Clone(p), fmt.Sprint(i)))
				}
			}
		default:
			if !d.IsConcrete() {
				out = append(out, p)
			}
		}
	}
	return out
}

func isIncomplete(err error) bool {
	for _, e := range errors.Errors(err) {
		format, _ := e.Msg()
		if !strings.HasPrefix(format, "incomplete value") && !strings.Contains(format, "non-concrete") {
			return false
		}
	}
	return true
}

// mismatchedTypes collects the kinds named by "conflicting values A and B
// (mismatched types X and Y)" errors.
func mismatchedTypes(errs []errors.Error) [][2]string {
	var out [][2]string
	for _, e := range errs {
		format, args := e.Msg()
		if strings.Contains(format, "mismatched types") && len(args) == 4 {
			out = append(out, [2]string{fmt.Sprint(args[2]), fmt.Sprint(args[3])})
		}
	}
	return out
}

// typeMismatch explains a value of the wrong kind: every conflict was a
// type mismatch, so the user's kind is the one common to all of them.
func typeMismatch(is cueIssue) (want, got string, ok bool) {
	if len(is.types) == 0 || is.got == "" {
		return "", "", false
	}
	gotKind := kindOfSyntax(is.got)
	var wants []string
	for _, t := range is.types {
		other := t[0]
		if t[0] == gotKind || (gotKind == "int" && t[0] == "number") {
			other = t[1]
		}
		if other == gotKind {
			return "", "", false
		}
		switch {
		case other == "int" && gotKind == "float":
			// 1.5 where an int is wanted: both are numbers, so say which.
			other, gotKind = "whole number", "fraction"
		case other == "float" || other == "int":
			other = "number"
		}
		if !slices.Contains(wants, other) {
			wants = append(wants, other)
		}
	}
	if slices.Contains(wants, "whole number") {
		wants = []string{"whole number"}
	}
	return article(strings.Join(wants, " or ")), article(gotKind), true
}

// kindOfSyntax names the CUE kind of a JSON literal.
func kindOfSyntax(s string) string {
	switch {
	case strings.HasPrefix(s, `"`):
		return "string"
	case s == "true" || s == "false":
		return "bool"
	case s == "null":
		return "null"
	case strings.HasPrefix(s, "["):
		return "list"
	case strings.HasPrefix(s, "{"):
		return "struct"
	case strings.ContainsAny(s, ".eE"):
		return "float"
	default:
		return "int"
	}
}

func article(kind string) string {
	switch kind {
	case "int", "float", "number":
		return "a number"
	case "string", "list", "struct", "bool":
		return "a " + kind
	case "null":
		return "null"
	case "whole number":
		return "a whole number"
	case "fraction":
		return "a fraction"
	}
	return kind
}
