package cache

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pipectl/pipectl/engine/secret"
)

// Reasons a stage will run, in the words plan prints.
const (
	ReasonNew          = "new"
	ReasonType         = "stage type changed"
	ReasonNotebook     = "notebook changed"
	ReasonPackage      = "package changed"
	ReasonParams       = "params changed"
	ReasonExecutor     = "executor changed"
	ReasonConfig       = "target config changed"
	ReasonRequirements = "requirements changed"
	ReasonKeyVersion   = "cache key definition changed"
	ReasonInput        = "input changed"
)

// Change is one difference between the components of two keys.
type Change struct {
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// Detail says what changed, e.g. "model_params: {"C":8} → {"C":4}".
	Detail string `json:"detail"`
}

// Diff lists what changed from old to cur, grouped by reason in a fixed
// order. Equal components give no changes.
func Diff(old, cur Components) []Change {
	var out []Change
	add := func(reason, format string, args ...any) {
		out = append(out, Change{Reason: reason, Detail: fmt.Sprintf(format, args...)})
	}
	if old.Version != 0 && old.Version != KeyVersion {
		add(ReasonKeyVersion, "v%d → v%d", old.Version, KeyVersion)
	}
	if old.Type != cur.Type {
		add(ReasonType, "%s → %s", old.Type, cur.Type)
	}
	if old.Notebook != cur.Notebook {
		add(ReasonNotebook, "%s → %s", old.Notebook, cur.Notebook)
	}
	for _, d := range diffFiles(old.Notebooks, cur.Notebooks) {
		add(ReasonNotebook, "%s", d)
	}
	pkgs := slices.Sorted(maps.Keys(union(old.Packages, cur.Packages)))
	for _, p := range pkgs {
		o, c := old.Packages[p], cur.Packages[p]
		switch {
		case o == nil:
			add(ReasonPackage, "%s: now imported", p)
		case c == nil:
			add(ReasonPackage, "%s: no longer imported", p)
		default:
			for _, d := range diffFiles(o, c) {
				add(ReasonPackage, "%s", d)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(union(old.Params, cur.Params))) {
		o, okOld := old.Params[k]
		c, okCur := cur.Params[k]
		// Values that look like credentials are masked (engine/secret):
		// plan --explain prints these details.
		o, c = secret.String(k, o), secret.String(k, c)
		switch {
		case !okOld:
			add(ReasonParams, "%s: added (%s)", k, short(c))
		case !okCur:
			add(ReasonParams, "%s: removed (was %s)", k, short(o))
		case o != c:
			add(ReasonParams, "%s: %s → %s", k, short(o), short(c))
		case old.Params[k] != cur.Params[k]:
			add(ReasonParams, "%s: changed (%s)", k, secret.Mask)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(union(old.Inputs, cur.Inputs))) {
		o, okOld := old.Inputs[k]
		c, okCur := cur.Inputs[k]
		switch {
		case !okOld:
			add(ReasonInput, "%s %s: not in the key before", k, short(c.Ref))
		case !okCur:
			add(ReasonInput, "%s %s: no longer an input", k, short(o.Ref))
		case o.Value == c.Value:
		case o.Resolved != "" && c.Resolved != "" && o.Resolved != c.Resolved:
			add(ReasonInput, "%s %s: %s → %s", k, short(c.Ref), short(o.Resolved), short(c.Resolved))
		default:
			add(ReasonInput, "%s %s: %s changed", k, short(c.Ref), valueKind(c.Value))
		}
	}
	if old.Executor != cur.Executor {
		add(ReasonExecutor, "%s → %s", old.Executor, cur.Executor)
	}
	if old.Config != cur.Config {
		add(ReasonConfig, "%s → %s", short(secret.Text(old.Config)), short(secret.Text(cur.Config)))
	}
	switch {
	case old.Requirements != cur.Requirements:
		add(ReasonRequirements, "%s → %s", orNone(old.Requirements), orNone(cur.Requirements))
	case old.RequirementsSHA != cur.RequirementsSHA:
		add(ReasonRequirements, "%s: modified", cur.Requirements)
	}
	return out
}

// Reasons returns the distinct reasons of changes, in order.
func Reasons(changes []Change) []string {
	var out []string
	for _, c := range changes {
		if !slices.Contains(out, c.Reason) {
			out = append(out, c.Reason)
		}
	}
	return out
}

func diffFiles(old, cur map[string]string) []string {
	var out []string
	for _, f := range slices.Sorted(maps.Keys(union(old, cur))) {
		o, okOld := old[f]
		c, okCur := cur[f]
		switch {
		case !okOld:
			out = append(out, f+": added")
		case !okCur:
			out = append(out, f+": removed")
		case o != c:
			out = append(out, f+": modified")
		}
	}
	return out
}

func union[V any](a, b map[string]V) map[string]bool {
	u := map[string]bool{}
	for k := range a {
		u[k] = true
	}
	for k := range b {
		u[k] = true
	}
	return u
}

func short(s string) string {
	const max = 80
	if s == "" {
		return `""`
	}
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	if strings.ContainsAny(s, " \t\n") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// valueKind names what a fingerprint value is, for "sha256 changed".
func valueKind(v string) string {
	if kind, _, ok := strings.Cut(v, ":"); ok && kind != "" && !strings.ContainsAny(kind, " /") {
		return kind
	}
	return "fingerprint"
}
