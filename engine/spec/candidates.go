package spec

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/diag"
)

// checkCandidateModels reports evaluate candidates that register different
// models, on any target: evaluate compares versions of ONE registered model
// and moves that model's alias, so a candidate of another model would be
// compared with the wrong champion. Names with references are known only
// at run time and are not compared.
func (l *loader) checkCandidateModels(p *Pipeline, st *Stage, raw cue.Value) {
	// The stages as written first; then each target, whose overrides may
	// make the names differ there only.
	for _, tn := range append([]string{""}, p.TargetNames()...) {
		if l.candidateModelsDiffer(p, st, raw, tn) {
			return
		}
	}
}

// candidateModelsDiffer reports the first candidate whose model_name on
// target (or as written, for "") differs from the first candidate's.
func (l *loader) candidateModelsDiffer(p *Pipeline, st *Stage, raw cue.Value, target string) bool {
	cands, _ := st.Params["candidates"].([]any)
	first, firstName := "", ""
	for i, c := range cands {
		name, _ := c.(string)
		other := p.Stages[name]
		if other == nil || other.Type != TypeTrain {
			continue // reported by checkCandidates
		}
		model, ok := p.targetParam(target, name, "model_name").(string)
		if !ok || strings.Contains(model, "${") {
			continue
		}
		if first == "" {
			first, firstName = model, name
			continue
		}
		if model == first {
			continue
		}
		where := ""
		if target != "" {
			where = " on target " + target
		}
		cp := fmt.Sprintf("%s.params.candidates.%d", st.Path, i)
		l.add(diag.Errorf(l.posAt(raw, splitPath(cp)...), cp,
			"candidates %s and %s register different models%s (%q and %q)", firstName, name, where, first, model).
			WithDetail("evaluate compares versions of one registered model and moves that model's alias").
			WithFix("give every candidate the same model_name, or evaluate each model in its own evaluate stage"))
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
