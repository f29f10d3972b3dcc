package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pipectl/pipectl/engine/dag"
	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/spec"
)

// Plan is what a run of one pipeline on one target will do.
type Plan struct {
	Pipeline *spec.Pipeline
	Target   *spec.Target
	Stages   map[string]*Stage
	Layers   [][]string
	Graph    *dag.Graph
}

// Stage is one stage as it will run.
type Stage struct {
	Name     string
	Type     string
	Notebook string
	Executor string
	// Needs are every direct dependency (needs, references, stage lists).
	Needs        []string
	Retries      int
	RetryBackoff time.Duration
	Timeout      time.Duration
	Outputs      []string
	// Inputs maps the parameters that name inputs to their kind
	// (spec.Stage.Inputs).
	Inputs map[string]string
	// Params are resolved JSON values; references stay as written until
	// Render substitutes them.
	Params map[string]any
	// ExecutorConfig is the target's configuration for Executor.
	ExecutorConfig json.RawMessage
}

// Set is one --set STAGE.PARAM=VALUE.
type Set struct {
	Stage string
	Key   string
	// Raw is VALUE as typed.
	Raw string
}

// ParseSet parses "STAGE.PARAM=VALUE".
func ParseSet(s string) (Set, error) {
	lhs, val, ok := strings.Cut(s, "=")
	stage, key, ok2 := strings.Cut(lhs, ".")
	if !ok || !ok2 || stage == "" || key == "" {
		return Set{}, fmt.Errorf("--set %q: want STAGE.PARAM=VALUE, e.g. --set data.test_size=0.25", s)
	}
	return Set{Stage: stage, Key: key, Raw: val}, nil
}

// Options select what Build plans.
type Options struct {
	// Target names the target; empty means the pipeline's default target.
	Target string
	Sets   []Set
}

// Build plans pipeline p on a target. Every problem is returned as a
// diagnostic; the plan is nil when there is an error.
func Build(s *spec.Schema, p *spec.Pipeline, opts Options) (*Plan, diag.Diagnostics) {
	tn := opts.Target
	if tn == "" {
		tn = p.DefaultTarget
	}
	t := p.Targets[tn]
	if t == nil {
		return nil, diag.Diagnostics{diag.Errorf(diag.Pos{}, "--target", "pipeline %s has no target %q", p.Name, tn).
			WithFix("use one of %s", strings.Join(p.TargetNames(), ", "))}
	}
	var ds diag.Diagnostics
	sets := map[string]map[string]Set{}
	for _, set := range opts.Sets {
		if p.Stages[set.Stage] == nil {
			ds = append(ds, diag.Errorf(diag.Pos{}, "--set "+set.Stage+"."+set.Key, "pipeline %s has no stage %q", p.Name, set.Stage).
				WithFix("stages: %s", strings.Join(p.StageNames(), ", ")))
			continue
		}
		if sets[set.Stage] == nil {
			sets[set.Stage] = map[string]Set{}
		}
		sets[set.Stage][set.Key] = set
	}
	resolved := map[string]map[string]any{}
	for _, sn := range p.StageNames() {
		params, pds := resolveWithSets(s, p, tn, sn, sets[sn])
		if !pds.HasErrors() {
			pds = append(pds, p.CheckInputs(s, tn, sn, params, setValues(sets[sn]))...)
		}
		ds = append(ds, pds...)
		resolved[sn] = params
	}
	if ds.HasErrors() {
		return nil, ds.Sort()
	}
	g := p.Graph(resolved)
	layers, err := g.Layers()
	if err != nil {
		return nil, diag.Diagnostics{diag.Errorf(p.Pos, p.Path, "%v", err)}
	}
	pl := &Plan{Pipeline: p, Target: t, Stages: map[string]*Stage{}, Layers: layers, Graph: g}
	for _, sn := range p.StageNames() {
		st := p.Stages[sn]
		ps := &Stage{
			Name:         sn,
			Type:         st.Type,
			Notebook:     st.Notebook,
			Executor:     p.StageExecutor(tn, sn),
			Needs:        g.Needs(sn),
			Retries:      st.Retries,
			RetryBackoff: st.RetryBackoff,
			Timeout:      st.Timeout,
			Outputs:      slices.Clone(st.Outputs),
			Inputs:       maps.Clone(st.Inputs),
			Params:       stageListsAsRefs(st.StageLists, resolved[sn]),
		}
		if o := t.Stages[sn]; o != nil {
			if o.Retries != nil {
				ps.Retries = *o.Retries
			}
			if o.Timeout != nil {
				ps.Timeout = *o.Timeout
			}
		}
		ps.ExecutorConfig = t.Config(ps.Executor)
		pl.Stages[sn] = ps
	}
	return pl, ds
}

// resolveWithSets resolves a stage's parameters with its --set values. A
// value is read as JSON (numbers, bools, lists, objects) unless the
// parameter takes only strings: --set data.data_version=2024 is "2024".
func resolveWithSets(s *spec.Schema, p *spec.Pipeline, target, stage string, sets map[string]Set) (map[string]any, diag.Diagnostics) {
	typed := map[string]any{}
	for k, set := range sets {
		if s.IsStringParam(p.Stages[stage].Type, k) {
			typed[k] = set.Raw
		} else {
			typed[k] = parseValue(set.Raw)
		}
	}
	return p.ResolveParams(s, target, stage, typed)
}

// setValues returns the --set keys of one stage, for positions.
func setValues(sets map[string]Set) map[string]any {
	out := make(map[string]any, len(sets))
	for k, set := range sets {
		out[k] = set.Raw
	}
	return out
}

func parseValue(raw string) any {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return raw
	}
	return v
}

// stageListsAsRefs turns the stage names of stage-list parameters (e.g.
// an evaluate stage's candidates) into references to the listed output:
// the notebook gets, say, model URIs.
func stageListsAsRefs(lists map[string]spec.StageList, params map[string]any) map[string]any {
	if len(lists) == 0 {
		return params
	}
	out := maps.Clone(params)
	for param, list := range lists {
		if names, ok := params[param].([]any); ok {
			refs := make([]any, len(names))
			for i, c := range names {
				refs[i] = spec.RefText(fmt.Sprint(c), list.Output)
			}
			out[param] = refs
		}
	}
	return out
}

// Order returns the stage names layer by layer.
func (p *Plan) Order() []string {
	var out []string
	for _, l := range p.Layers {
		out = append(out, l...)
	}
	return out
}

// RenderParams returns the stage's parameters as the strings a notebook
// receives (docs/STAGES.md): strings as they are, everything else as
// compact JSON; references are substituted by lookup. With a nil lookup,
// references stay as written.
func (st *Stage) RenderParams(lookup func(spec.Ref) (string, bool)) (map[string]string, error) {
	out := make(map[string]string, len(st.Params))
	for _, k := range slices.Sorted(maps.Keys(st.Params)) {
		v, err := substitute(st.Params[k], lookup)
		if err != nil {
			return nil, fmt.Errorf("stage %s, parameter %s: %w", st.Name, k, err)
		}
		out[k] = Stringify(v)
	}
	return out, nil
}

// Stringify renders a JSON value as a notebook parameter string.
func Stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}

func substitute(v any, lookup func(spec.Ref) (string, bool)) (any, error) {
	if lookup == nil {
		return v, nil
	}
	switch x := v.(type) {
	case string:
		return spec.Substitute(x, lookup)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			s, err := substitute(e, lookup)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			s, err := substitute(e, lookup)
			if err != nil {
				return nil, err
			}
			out[k] = s
		}
		return out, nil
	}
	return v, nil
}

// Refs returns every reference in the stage's parameters.
func (st *Stage) Refs() []spec.Ref {
	var all []spec.Ref
	for _, k := range slices.Sorted(maps.Keys(st.Params)) {
		refs, _ := spec.CollectRefs(st.Params[k])
		all = append(all, refs...)
	}
	return all
}
