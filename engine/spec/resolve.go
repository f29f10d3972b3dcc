package spec

import (
	"fmt"
	"maps"
	"strings"

	"github.com/pipectl/pipectl/engine/diag"
)

// ResolveParams returns the parameters of stage on target: the stage's
// parameters, replaced key by key by the target's overrides and then by
// sets (from --set), with schema defaults applied and checked. Problems in
// sets are reported at the path "--set <stage>.<key>".
func (p *Pipeline) ResolveParams(s *Schema, target, stage string, sets map[string]any) (map[string]any, diag.Diagnostics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.resolveParams(s, target, stage, sets)
}

// resolveParams is ResolveParams with the schema lock held.
func (p *Pipeline) resolveParams(s *Schema, target, stage string, sets map[string]any) (map[string]any, diag.Diagnostics) {
	st := p.Stages[stage]
	if st == nil {
		return nil, diag.Diagnostics{diag.Errorf(diag.Pos{}, "", "pipeline %q has no stage %q", p.Name, stage)}
	}
	merged := maps.Clone(st.Params)
	var over *StageOverride
	if t := p.Targets[target]; t != nil {
		over = t.Stages[stage]
	}
	if over != nil {
		maps.Copy(merged, over.Params)
	}
	maps.Copy(merged, sets)

	// where says who set a top-level key: --set, the target, or the stage.
	where := func(field string) (diag.Pos, string) {
		key, _, _ := strings.Cut(field, ".")
		switch {
		case sets != nil && hasKey(sets, key):
			return diag.Pos{}, fmt.Sprintf("--set %s.%s", stage, field)
		case over != nil && hasKey(over.Params, key):
			return over.ParamPos[key], over.Path + ".params." + field
		case hasKey(st.ParamPos, key):
			return st.ParamPos[key], st.Path + ".params." + field
		}
		return st.Pos, st.Path + ".params." + field
	}
	// The schema's rules (#StageTypes) are checked there too.
	resolved, issues := s.resolveParamsLocked(st.Type, merged)
	if len(issues) == 0 {
		issues = p.encodingIssues(s, stage, resolved)
	}
	var ds diag.Diagnostics
	for _, is := range issues {
		pos, path := where(is.Field)
		d := diag.Errorf(pos, path, "%s", is.Summary)
		d.Fix = is.Fix
		ds = append(ds, d)
	}
	if len(ds) > 0 {
		return nil, ds
	}
	return resolved, nil
}

func hasKey[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
