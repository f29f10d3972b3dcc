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
	resolved, issues := s.resolveParamsLocked(st.Type, merged)
	if len(issues) == 0 {
		issues = checkResolved(st.Type, resolved, merged, s)
	}
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

// checkResolved checks what the schema cannot: path safety, cross-field
// rules, URI forms. given are the parameters as written (no defaults).
func checkResolved(stageType string, r, given map[string]any, s *Schema) []ParamIssue {
	var out []ParamIssue
	add := func(field, fix, format string, args ...any) {
		out = append(out, ParamIssue{Field: field, Summary: fmt.Sprintf(format, args...), Fix: fix})
	}
	segment := func(field string) {
		v, ok := r[field].(string)
		if !ok || strings.Contains(v, "${") {
			return
		}
		if why := CheckSegment(v); why != "" {
			add(field, "use a simple name such as v1 or 2026-11", "%s %q %s", field, truncate(v), why)
		}
	}
	switch stageType {
	case TypeData:
		segment("data_name")
		segment("data_version")
		test := toFloat(r["test_size"])
		if holdout, _ := r["holdout"].(bool); holdout {
			if h := toFloat(r["holdout_size"]); test+h >= 1 {
				add("test_size", "sizes are fractions of the WHOLE dataset and train is the rest: keep test_size + holdout_size below 1",
					"test_size + holdout_size = %g leaves no training data", test+h)
			}
		} else if hasKey(given, "holdout_size") {
			add("holdout_size", "set holdout: true, or remove holdout_size", "holdout_size is set but holdout is false")
		}
		if cols, ok := r["stratify"].([]any); ok && len(cols) == 0 {
			add("stratify", "list the columns to stratify by, or use null for a random split", "stratify is an empty list")
		}
	case TypeTrain:
		segment("data_name")
		segment("data_version")
		if v, ok := r["model_name"].(string); ok && !strings.Contains(v, "${") && !modelNameRE.MatchString(v) {
			add("model_name", "use letters, digits and underscores, e.g. sentiment_classifier",
				"model_name %q is not a valid registered model name", truncate(v))
		}
		if f, ok := r["features"].(map[string]any); ok {
			for _, k := range []string{"word_ngram", "char_ngram"} {
				if rng, ok := f[k].([]any); ok && len(rng) == 2 && toFloat(rng[0]) > toFloat(rng[1]) {
					add("features."+k, "write [min, max], e.g. [1, 2]", "%s %v has min above max", k, rng)
				}
			}
		}
		if mt, _ := r["model_type"].(string); mt != "naive_bayes" {
			if mp, ok := given["model_params"].(map[string]any); ok && hasKey(mp, "variant") {
				add("model_params.variant", "variant only selects a naive_bayes flavour: remove it", "variant is a naive_bayes parameter, not %s", mt)
			}
		}
	case TypeEvaluate:
		segment("data_name")
		segment("data_version")
	case TypeInference:
		_, hasName := given["data_name"]
		_, hasVersion := given["data_version"]
		_, hasPath := given["input_path"]
		switch {
		case hasPath && (hasName || hasVersion):
			add("input_path", "give either data_name + data_version (+ split) or input_path", "inference takes one input: both input_path and data_name/data_version are set")
		case !hasPath && !(hasName && hasVersion):
			add("data_name", "give data_name and data_version (and split), or input_path to a CSV", "inference has no input: data_name and data_version, or input_path, are required")
		}
		segment("data_name")
		segment("data_version")
		segment("output_name")
		if m, ok := r["model"].(string); ok && !strings.Contains(m, "${") && !modelURIRE.MatchString(m) {
			add("model", "use models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model, or ${stages.<evaluate>.outputs.model_uri}",
				"model %q is not a model URI", truncate(m))
		}
	}
	return out
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case interface{ Float64() (float64, error) }:
		f, _ := x.Float64()
		return f
	}
	return 0
}
