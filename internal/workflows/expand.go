package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Options says what run-time loops range over.
type Options struct {
	// Pipelines maps each pipeline name to its target names: the values of
	// variables annotated each-pipeline and each-target.
	Pipelines map[string][]string
}

// Invocation is one pipectl command line as one way of running the file
// executes it.
type Invocation struct {
	File string
	// Line is the file line of the command.
	Line int
	Job  string
	Step string
	// Event is the trigger; empty in a composite action.
	Event string
	// Context names the inputs, matrix values and assumed conditions.
	Context string
	// Args are the arguments after pipectl (or go run ./cmd/pipectl).
	Args []string
	// Text is the command as written in the script.
	Text string
	// Environment is the job's environment in this context, "" for none.
	Environment string
	// Concurrency is the job's concurrency group, "" for none.
	Concurrency string
	// CancelInProgress is the job's cancel-in-progress setting.
	CancelInProgress string
}

// Where is "file:line".
func (inv Invocation) Where() string { return fmt.Sprintf("%s:%d", inv.File, inv.Line) }

// String is the command line with its context, for messages.
func (inv Invocation) String() string {
	return fmt.Sprintf("%s: pipectl %s (%s)", inv.Where(), strings.Join(inv.Args, " "), inv.Context)
}

// Error is a problem at a line of a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unknown reports whether s holds a value the file does not determine,
// and names it.
func Unknown(s string) (what string, ok bool) {
	i := strings.Index(s, unknownMark)
	if i < 0 {
		return "", false
	}
	rest := s[i+1:]
	if j := strings.Index(rest, unknownMark); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}

// maxConditions bounds the undecided conditions of one job.
const maxConditions = 10

// Invocations returns every pipectl command line of the file, expanded
// for every trigger, dispatch input choice, matrix combination and
// undecided condition, without duplicates.
func (f *File) Invocations(opts Options) ([]Invocation, []error) {
	var out []Invocation
	var errs []error
	seen := map[string]bool{}
	for _, job := range f.Jobs {
		for _, c := range f.contexts(job) {
			invs, err := explore(func(assume map[string]bool) ([]Invocation, error) {
				return f.expandJob(job, c, assume, opts)
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, inv := range invs {
				key := strings.Join(append([]string{inv.Where(), inv.Event, inv.Environment, inv.Concurrency}, inv.Args...), "\x01")
				if !seen[key] {
					seen[key] = true
					out = append(out, inv)
				}
			}
		}
	}
	return out, errs
}

// runContext is one way a job runs, before conditions are decided.
type runContext struct {
	event  string
	inputs map[string]value
	// matrix holds raw matrix values; they may hold expressions.
	matrix map[string]string
}

// contexts enumerates events × dispatch input choices × matrix rows.
func (f *File) contexts(job *Job) []runContext {
	events := f.Events
	if f.Action {
		events = []string{""}
	}
	var rows []map[string]string
	if job.Matrix != nil {
		rows = job.Matrix.combinations()
	} else {
		rows = []map[string]string{nil}
	}
	var out []runContext
	for _, ev := range events {
		for _, in := range f.inputAssignments(ev) {
			for _, row := range rows {
				out = append(out, runContext{event: ev, inputs: in, matrix: row})
			}
		}
	}
	return out
}

// inputAssignments lists the inputs a run can have: every choice of every
// choice and boolean input of workflow_dispatch, defaults otherwise; none
// for other events (inputs are null there).
func (f *File) inputAssignments(event string) []map[string]value {
	if !f.Action && event != "workflow_dispatch" {
		return []map[string]value{nil}
	}
	out := []map[string]value{{}}
	for _, in := range f.Inputs {
		var vals []value
		switch {
		case f.Action:
			vals = []value{strValue(in.Default)}
		case in.Type == "choice":
			for _, o := range in.Options {
				vals = append(vals, strValue(o))
			}
		case in.Type == "boolean":
			vals = []value{boolValue(true), boolValue(false)}
		default:
			vals = []value{strValue(in.Default)}
		}
		var next []map[string]value
		for _, a := range out {
			for _, v := range vals {
				b := maps.Clone(a)
				b[strings.ToLower(in.Name)] = v
				next = append(next, b)
			}
		}
		out = next
	}
	return out
}

// combinations expands a matrix as GitHub does: the cross product of its
// keys, less excluded rows, with include rows merged into the rows they
// do not contradict or added as rows of their own.
func (m *Matrix) combinations() []map[string]string {
	if m.Expression != "" {
		return []map[string]string{nil} // every matrix value is unknown
	}
	rows := []map[string]string{{}}
	for _, k := range m.Keys {
		var next []map[string]string
		for _, r := range rows {
			for _, v := range m.Values[k] {
				n := maps.Clone(r)
				n[k] = v
				next = append(next, n)
			}
		}
		rows = next
	}
	rows = slices.DeleteFunc(rows, func(r map[string]string) bool {
		for _, ex := range m.Exclude {
			if matches(r, ex) {
				return true
			}
		}
		return false
	})
	if len(m.Keys) == 0 {
		rows = nil
	}
	original := len(rows)
	for _, inc := range m.Include {
		merged := false
		for _, r := range rows[:original] {
			ok := true
			for k, v := range inc {
				if slices.Contains(m.Keys, k) && r[k] != v {
					ok = false
				}
			}
			if ok {
				for k, v := range inc {
					if !slices.Contains(m.Keys, k) {
						r[k] = v
					}
				}
				merged = true
			}
		}
		if !merged {
			rows = append(rows, maps.Clone(inc))
		}
	}
	if len(rows) == 0 {
		return []map[string]string{nil}
	}
	return rows
}

func matches(row, sel map[string]string) bool {
	for k, v := range sel {
		if row[k] != v {
			return false
		}
	}
	return true
}

// explore runs fn, and again with each undecided condition it reports set
// to true and to false, collecting what every complete run returns.
func explore(fn func(assume map[string]bool) ([]Invocation, error)) ([]Invocation, error) {
	var out []Invocation
	var rec func(assume map[string]bool) error
	rec = func(assume map[string]bool) error {
		invs, err := fn(assume)
		var nc *needCondition
		if !errors.As(err, &nc) {
			out = append(out, invs...)
			return err
		}
		if len(assume) >= maxConditions {
			return fmt.Errorf("more than %d undecided conditions (latest: %s)", maxConditions, nc.text)
		}
		for _, b := range []bool{true, false} {
			a := maps.Clone(assume)
			a[nc.text] = b
			if err := rec(a); err != nil {
				return err
			}
		}
		return nil
	}
	return out, rec(map[string]bool{})
}

// envScope is the env: visible at one level: each variable is evaluated
// when first used, so conditions in variables no pipectl argument uses
// (a token fallback, say) never multiply the contexts.
type envScope struct {
	vars  map[string]*lazyVar
	outer *envScope
}

type lazyVar struct {
	raw  string
	sc   *scope
	val  *value
	busy bool
}

// with returns the scope of a level inside e that sets vars.
func (e *envScope) with(sc *scope, vars []Var) *envScope {
	inner := &envScope{vars: map[string]*lazyVar{}, outer: e}
	vsc := *sc
	vsc.env = e.lookup // a level's values see the levels around it
	for _, v := range vars {
		inner.vars[v.Name] = &lazyVar{raw: v.Value, sc: &vsc}
	}
	return inner
}

func (e *envScope) lookup(name string) (value, bool, error) {
	for s := e; s != nil; s = s.outer {
		lv, ok := s.vars[name]
		if !ok {
			continue
		}
		if lv.val == nil {
			if lv.busy {
				return value{}, false, fmt.Errorf("env %s refers to itself", name)
			}
			lv.busy = true
			v, err := lv.sc.evalValue(lv.raw)
			lv.busy = false
			if err != nil {
				return value{}, false, err
			}
			lv.val = &v
		}
		return *lv.val, true, nil
	}
	return value{}, false, nil
}

func (f *File) errorAt(line int, format string, args ...any) error {
	return &Error{File: f.Path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// expandJob finds the job's invocations in one context with the
// conditions in assume decided.
func (f *File) expandJob(job *Job, c runContext, assume map[string]bool, opts Options) ([]Invocation, error) {
	sc := &scope{event: c.event, inputs: c.inputs, matrix: map[string]value{}, assume: assume}
	for k, raw := range c.matrix {
		v, err := sc.evalValue(raw)
		if err != nil {
			return nil, f.errorAt(job.Matrix.Line, "matrix %s: %v", k, err)
		}
		sc.matrix[strings.ToLower(k)] = v
	}
	wfEnv := (*envScope)(nil).with(sc, f.Env)
	jobEnv := wfEnv.with(sc, job.Env)
	sc.env = jobEnv.lookup
	if ok, err := sc.evalIf(job.If); err != nil || !ok {
		return nil, f.wrap(err, job.Line, "job "+job.ID+" if")
	}
	envName, err := sc.evalValue(job.Environment)
	if err != nil {
		return nil, f.wrap(err, job.Line, "job "+job.ID+" environment")
	}
	group, err := sc.evalValue(job.Concurrency.Group)
	if err != nil {
		return nil, f.wrap(err, job.Concurrency.Line, "job "+job.ID+" concurrency")
	}
	cancel, err := sc.evalValue(job.Concurrency.CancelInProgress)
	if err != nil {
		return nil, f.wrap(err, job.Concurrency.Line, "job "+job.ID+" concurrency")
	}
	var out []Invocation
	for _, st := range job.Steps {
		if st.Run == "" {
			continue
		}
		stepEnv := jobEnv.with(sc, st.Env)
		ssc := *sc
		ssc.env = stepEnv.lookup
		if ok, err := ssc.evalIf(st.If); err != nil {
			return nil, f.wrap(err, st.Line, "step if")
		} else if !ok {
			continue
		}
		script, err := ssc.interpolate(st.Run)
		if err != nil {
			return nil, f.wrap(err, st.RunLine, "run")
		}
		cmds, ann, err := scanScript(script)
		if err != nil {
			return nil, f.wrap(err, st.RunLine, "run")
		}
		for _, cmd := range cmds {
			words, ok := pipectlArgs(cmd.words)
			if !ok {
				continue
			}
			line := st.RunLine + cmd.line
			argSets, err := expandWords(words, ann, stepEnv, opts)
			if err != nil {
				return nil, f.wrap(fmt.Errorf("%s: %w", cmd.text, err), line, "run")
			}
			for _, args := range argSets {
				for _, a := range args {
					if what, unknown := Unknown(a); unknown {
						return nil, f.errorAt(line, "%s: an argument depends on %s, which the workflow does not determine; pass pipectl arguments through env: from inputs, matrix values or literals", cmd.text, what)
					}
				}
				out = append(out, Invocation{
					File: f.Path, Line: line, Job: job.ID, Step: st.Label(), Event: c.event,
					Context: describe(c, sc.matrix, assume), Args: args, Text: cmd.text,
					Environment: envName.String(), Concurrency: group.String(), CancelInProgress: cancel.String(),
				})
			}
		}
	}
	return out, nil
}

// wrap adds the file position to an error, leaving needCondition as is
// for explore.
func (f *File) wrap(err error, line int, where string) error {
	if err == nil {
		return nil
	}
	var nc *needCondition
	if errors.As(err, &nc) {
		return err
	}
	return f.errorAt(line, "%s: %v", where, err)
}

// pipectlArgs returns the arguments of a pipectl command: `pipectl ...`,
// `path/to/pipectl ...` or `go run ./cmd/pipectl ...`.
func pipectlArgs(words []word) ([]word, bool) {
	if len(words) == 0 {
		return nil, false
	}
	w0 := words[0]
	if lit, ok := w0.literal(); ok && lit == "pipectl" {
		return words[1:], true
	}
	if last := w0[len(w0)-1]; last.name == "" && last.opaque == "" && strings.HasSuffix(last.lit, "/pipectl") {
		return words[1:], true
	}
	if lit, _ := w0.literal(); lit == "go" && len(words) > 2 {
		if run, _ := words[1].literal(); run == "run" {
			for i, w := range words[2:] {
				pkg, _ := w.literal()
				switch strings.TrimSuffix(pkg, "/") {
				case "./cmd/pipectl", "github.com/pipectl/pipectl/cmd/pipectl":
					return words[3+i:], true
				}
				if !strings.HasPrefix(pkg, "-") {
					break
				}
			}
		}
	}
	return nil, false
}

// expandWords resolves the words' variables: annotated loop variables take
// each pipeline (and each of its targets), others come from env:.
func expandWords(words []word, ann annotation, env *envScope, opts Options) ([][]string, error) {
	var pv, tv string
	for _, w := range words {
		for _, p := range w {
			switch ann[p.name] {
			case "each-pipeline":
				pv = p.name
			case "each-target":
				tv = p.name
			}
		}
	}
	names := slices.Sorted(maps.Keys(opts.Pipelines))
	var loops []map[string]string
	switch {
	case (pv != "" || tv != "") && len(names) == 0:
		return nil, fmt.Errorf("annotated loop variables, but no pipelines to range over")
	case pv != "" || tv != "":
		seen := map[string]bool{}
		for _, p := range names {
			targets := []string{""}
			if tv != "" {
				targets = opts.Pipelines[p]
			}
			for _, t := range targets {
				a := map[string]string{}
				if pv != "" {
					a[pv] = p
				}
				if tv != "" {
					a[tv] = t
				}
				key := a[pv] + "\x01" + a[tv]
				if !seen[key] {
					seen[key] = true
					loops = append(loops, a)
				}
			}
		}
	default:
		loops = []map[string]string{nil}
	}
	var out [][]string
	for _, loop := range loops {
		var args []string
		for _, w := range words {
			var b strings.Builder
			for _, p := range w {
				switch {
				case p.opaque != "":
					return nil, fmt.Errorf("cannot tell the value of %s: pass pipectl arguments through env: or literals", p.opaque)
				case p.name != "":
					if v, ok := loop[p.name]; ok {
						b.WriteString(v)
						continue
					}
					v, ok, err := env.lookup(p.name)
					if err != nil {
						return nil, err
					}
					if ok {
						b.WriteString(v.String())
					} else {
						return nil, fmt.Errorf("$%s is not set by the env: of the step, job or workflow (nor annotated with # pipectl-test: %s=each-pipeline|each-target)", p.name, p.name)
					}
				default:
					b.WriteString(p.lit)
				}
			}
			args = append(args, b.String())
		}
		out = append(out, args)
	}
	return out, nil
}

// describe names a context for messages.
func describe(c runContext, matrix map[string]value, assume map[string]bool) string {
	var parts []string
	if c.event != "" {
		parts = append(parts, "on "+c.event)
	}
	if len(c.inputs) > 0 {
		var in []string
		for _, k := range slices.Sorted(maps.Keys(c.inputs)) {
			in = append(in, k+"="+c.inputs[k].String())
		}
		parts = append(parts, "inputs "+strings.Join(in, ", "))
	}
	if len(matrix) > 0 {
		var m []string
		for _, k := range slices.Sorted(maps.Keys(matrix)) {
			m = append(m, k+"="+matrix[k].String())
		}
		parts = append(parts, "matrix "+strings.Join(m, ", "))
	}
	if len(assume) > 0 {
		conds := slices.Sorted(maps.Keys(assume))
		sort.Strings(conds)
		for _, k := range conds {
			parts = append(parts, fmt.Sprintf("%s is %t", k, assume[k]))
		}
	}
	if len(parts) == 0 {
		return "always"
	}
	return strings.Join(parts, "; ")
}
