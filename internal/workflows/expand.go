package workflows

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rhysd/actionlint"
	"mvdan.cc/sh/v3/syntax"
)

// Invocation is one pipectl command line as one way of running the file
// executes it: on Event ("" in a composite action), with the inputs,
// matrix values and assumed conditions that Context names. Args follow
// pipectl (or go run ./cmd/pipectl). Environment, Concurrency and
// CancelInProgress are the job's, "" when not set.
type Invocation struct {
	File, Job, Event, Context                  string
	Line                                       int
	Args                                       []string
	Environment, Concurrency, CancelInProgress string
}

// Where is "file:line".
func (inv Invocation) Where() string { return fmt.Sprintf("%s:%d", inv.File, inv.Line) }

// Invocations returns every pipectl command line of the file, expanded
// for every trigger, dispatch input choice, matrix combination and
// undecided condition, without duplicates. pipelines maps each pipeline
// to its targets: what variables annotated each-pipeline and each-target
// range over.
func (f *File) Invocations(pipelines map[string][]string) ([]Invocation, []error) {
	var out []Invocation
	var errs []error
	seen := map[string]bool{}
	for _, job := range f.Jobs() {
		for _, ev := range f.Events() {
			for _, in := range f.inputAssignments(ev) {
				for _, row := range combinations(job.Strategy) {
					invs, err := explore(map[string]bool{}, func(assume map[string]bool) ([]Invocation, error) {
						return f.expandJob(job, &scope{event: ev, inputs: in, assume: assume}, row, pipelines)
					})
					if err != nil {
						errs = append(errs, err)
					}
					for _, inv := range invs { // conditions no argument depends on repeat them
						if key := fmt.Sprint(inv.Where(), inv.Event, inv.Environment, inv.Concurrency, inv.Args); !seen[key] {
							seen[key] = true
							out = append(out, inv)
						}
					}
				}
			}
		}
	}
	return out, errs
}

// cross returns each of rows with key set to each of vals.
func cross[V any](rows []map[string]V, key string, vals []V) []map[string]V {
	var out []map[string]V
	for _, r := range rows {
		for _, v := range vals {
			out = append(out, maps.Clone(r))
			out[len(out)-1][key] = v
		}
	}
	return out
}

// inputAssignments lists the inputs a run can have: an action's defaults;
// every choice of every choice and boolean input of workflow_dispatch,
// defaults otherwise; none for other events (inputs are null there).
func (f *File) inputAssignments(event string) []map[string]value {
	out := []map[string]value{{}}
	for name, def := range f.inputs {
		out[0][name] = strValue(def)
	}
	for _, e := range f.Workflow.On {
		d, ok := e.(*actionlint.WorkflowDispatchEvent)
		if !ok || event != d.EventName() {
			continue
		}
		for name, in := range d.Inputs {
			vals := []value{{}}
			switch {
			case in.Type == actionlint.WorkflowDispatchEventInputTypeChoice:
				vals = nil
				for _, o := range in.Options {
					vals = append(vals, strValue(o.Value))
				}
			case in.Type == actionlint.WorkflowDispatchEventInputTypeBoolean:
				vals = []value{boolValue(true), boolValue(false)}
			case in.Default != nil:
				vals = []value{strValue(in.Default.Value)}
			}
			out = cross(out, name, vals)
		}
	}
	return out
}

// combinations expands a job's matrix as GitHub does: the cross product
// of its keys, less excluded rows, with include rows merged into the rows
// they do not contradict or added as rows of their own. Values are kept
// as expressions: a YAML boolean or null becomes one of its type, so that
// it tests as GitHub's does. A matrix given as an expression has unknown
// values.
func combinations(st *actionlint.Strategy) []map[string]string {
	if st == nil || st.Matrix == nil || st.Matrix.Expression != nil {
		return []map[string]string{nil}
	}
	m := st.Matrix
	raw := func(v actionlint.RawYAMLValue) string {
		if s, ok := v.(*actionlint.RawYAMLString); ok && (s.Value == "true" || s.Value == "false" || s.Value == "null") {
			return "${{ " + s.Value + " }}"
		} else if ok {
			return s.Value
		}
		return v.String()
	}
	rowsOf := func(cs *actionlint.MatrixCombinations) (out []map[string]string) {
		for i := 0; cs != nil && i < len(cs.Combinations); i++ {
			out = append(out, map[string]string{})
			for _, a := range cs.Combinations[i].Assigns {
				out[i][a.Key.Value] = raw(a.Value)
			}
		}
		return out
	}
	var keys []string
	rows := []map[string]string{{}}
	for _, id := range slices.Sorted(maps.Keys(m.Rows)) {
		var vals []string
		for _, v := range m.Rows[id].Values {
			vals = append(vals, raw(v))
		}
		if e := m.Rows[id].Expression; e != nil { // values unknown
			vals = []string{e.Value}
		}
		keys = append(keys, m.Rows[id].Name.Value)
		rows = cross(rows, m.Rows[id].Name.Value, vals)
	}
	for _, ex := range rowsOf(m.Exclude) {
		rows = slices.DeleteFunc(rows, func(r map[string]string) bool { return matches(r, ex, nil) })
	}
	if len(keys) == 0 {
		rows = nil
	}
	original := len(rows)
	for _, inc := range rowsOf(m.Include) {
		merged := false
		for _, r := range rows[:original] {
			if matches(r, inc, keys) {
				maps.Copy(r, inc)
				merged = true
			}
		}
		if !merged {
			rows = append(rows, inc)
		}
	}
	if len(rows) == 0 {
		return []map[string]string{nil}
	}
	return rows
}

// matches reports whether row agrees with sel on sel's keys, or only on
// those of them in keys when keys is not nil.
func matches(row, sel map[string]string, keys []string) bool {
	for k, v := range sel {
		if (keys == nil || slices.Contains(keys, k)) && row[k] != v {
			return false
		}
	}
	return true
}

// explore calls expand with the conditions in assume decided, and again
// with each condition it cannot decide set to true and to false.
func explore(assume map[string]bool, expand func(map[string]bool) ([]Invocation, error)) ([]Invocation, error) {
	invs, err := expand(assume)
	var nc *needCondition
	if !errors.As(err, &nc) {
		return invs, err
	} else if len(assume) >= 10 { // a bound on a job's undecided conditions
		return nil, fmt.Errorf("more than 10 undecided conditions (latest: %s)", nc.text)
	}
	for _, b := range []bool{true, false} {
		a := maps.Clone(assume)
		a[nc.text] = b
		more, err := explore(a, expand)
		if err != nil {
			return nil, err
		}
		invs = append(invs, more...)
	}
	return invs, nil
}

// errorAt adds a file position to an error, leaving needCondition as is
// for explore.
func (f *File) errorAt(err error, line int, format string, args ...any) error {
	var nc *needCondition
	if err == nil || errors.As(err, &nc) {
		return err
	}
	return fmt.Errorf("%s:%d: %s: %w", f.Path, line, fmt.Sprintf(format, args...), err)
}

// expandJob finds the job's invocations in one way it runs: sc holds the
// event, inputs and decided conditions, matrix the raw matrix values.
func (f *File) expandJob(job *actionlint.Job, sc *scope, matrix map[string]string, pipelines map[string][]string) ([]Invocation, error) {
	sc.matrix = map[string]value{}
	for k, raw := range matrix {
		v, err := sc.evalValue(raw)
		if err != nil {
			return nil, f.errorAt(err, job.Strategy.Matrix.Pos.Line, "matrix %s", k)
		}
		sc.matrix[strings.ToLower(k)] = v
	}
	inv := Invocation{File: f.Path, Job: job.ID.Value, Event: sc.event}
	sc, err := sc.withEnv(f.Workflow.Env)
	if err == nil {
		sc, err = sc.withEnv(job.Env)
	}
	var ok bool
	if err == nil {
		ok, err = sc.evalIf(job.If)
	}
	if err == nil && job.Environment != nil {
		inv.Environment, err = sc.str(job.Environment.Name)
	}
	if err == nil && job.Concurrency != nil {
		inv.Concurrency, err = sc.str(job.Concurrency.Group)
		if cc := job.Concurrency.CancelInProgress; err == nil && cc != nil {
			inv.CancelInProgress, err = sc.str(&actionlint.String{Value: cc.String()})
		}
	}
	if err != nil || !ok {
		return nil, f.errorAt(err, job.Pos.Line, "job %s", job.ID.Value)
	}
	var out []Invocation
	for _, st := range job.Steps {
		run, isRun := st.Exec.(*actionlint.ExecRun)
		if !isRun || run.Run == nil {
			continue
		}
		ssc, err := sc.withEnv(st.Env)
		if err == nil {
			ok, err = ssc.evalIf(st.If)
		}
		if err != nil || !ok {
			if err = f.errorAt(err, st.Pos.Line, "step"); err != nil {
				return nil, err
			}
			continue
		}
		// A block scalar (| or >) starts on the line after its indicator.
		first := run.Run.Pos.Line
		if l := f.lines[first-1]; run.Run.Pos.Col <= len(l) && strings.ContainsRune("|>", rune(l[run.Run.Pos.Col-1])) {
			first++
		}
		script, err := ssc.evalValue(run.Run.Value)
		var calls []*syntax.CallExpr
		var ann map[string]string
		if err == nil {
			calls, ann, err = scanScript(script.s)
		}
		if err != nil {
			return nil, f.errorAt(err, first, "run")
		}
		for _, call := range calls {
			words, ok := pipectlArgs(call.Args)
			if !ok {
				continue
			}
			start, end := call.Args[0].Pos(), call.Args[len(call.Args)-1].End()
			text := script.s[start.Offset():end.Offset()]
			inv.Line = first + int(start.Line()) - 1
			argSets, err := expandLoops(words, ann, ssc.env, pipelines)
			if err != nil {
				return nil, f.errorAt(err, inv.Line, "run: %s", text)
			}
			for _, args := range argSets {
				if what, unknown := unknownIn(strings.Join(args, " ")); unknown {
					return nil, fmt.Errorf("%s: run: %s: an argument depends on %s, which the workflow does not determine; pass pipectl arguments through env: from inputs, matrix values or literals", inv.Where(), text, what)
				}
				inv.Args, inv.Context = args, fmt.Sprintf("on %q, inputs %v, matrix %v, assuming %v", sc.event, sc.inputs, sc.matrix, sc.assume)
				out = append(out, inv)
			}
		}
	}
	return out, nil
}
