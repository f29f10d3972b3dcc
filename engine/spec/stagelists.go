package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/diag"
)

// checkStageListsAgree reports listed stages that give different values to
// a parameter their list requires to be the same (#StageTypes stage_lists
// same), on any target: e.g. evaluate candidates that register different
// models. Values with references are known only at run time and are not
// compared.
func (l *loader) checkStageListsAgree(p *Pipeline, st *Stage, raw cue.Value) {
	for _, list := range slices.Sorted(maps.Keys(st.StageLists)) {
		sl := st.StageLists[list]
		for _, param := range slices.Sorted(maps.Keys(sl.Same)) {
			// The stages as written first; then each target, whose overrides
			// may make the values differ there only.
			for _, tn := range append([]string{""}, p.TargetNames()...) {
				if l.listedStagesDiffer(p, st, raw, list, sl, param, tn) {
					break
				}
			}
		}
	}
}

// listedStagesDiffer reports the first listed stage whose param on target
// (or as written, for "") differs from the first listed stage's.
func (l *loader) listedStagesDiffer(p *Pipeline, st *Stage, raw cue.Value, list string, sl StageList, param, target string) bool {
	names, _ := st.Params[list].([]any)
	first, firstName := "", ""
	for i, c := range names {
		name, _ := c.(string)
		other := p.Stages[name]
		if other == nil || other.Type != sl.Type {
			continue // reported by checkStageLists
		}
		v, ok := p.targetParam(target, name, param).(string)
		if !ok || strings.Contains(v, "${") {
			continue
		}
		if first == "" {
			first, firstName = v, name
			continue
		}
		if v == first {
			continue
		}
		where := ""
		if target != "" {
			where = " on target " + target
		}
		cp := fmt.Sprintf("%s.params.%s.%d", st.Path, list, i)
		l.add(diag.Errorf(l.posAt(raw, splitPath(cp)...), cp,
			"%s %s and %s differ in %s%s (%q and %q)", list, firstName, name, param, where, first, v).
			WithDetail("%s", sl.Same[param]).
			WithFix("give every stage in %s the same %s, or list them in separate %s stages", list, param, st.Type))
		return true
	}
	return false
}

// targetParam returns a stage parameter as written on a target: the
// target's override, or the stage's own value ("" for no target).
func (p *Pipeline) targetParam(target, stage, key string) any {
	if t := p.Targets[target]; t != nil {
		if o := t.Stages[stage]; o != nil {
			if v, ok := o.Params[key]; ok {
				return v
			}
		}
	}
	return p.Stages[stage].Params[key]
}
