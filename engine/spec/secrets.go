package spec

import (
	"slices"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/engine/secret"
)

// warnSecrets warns about every value of a pipeline that looks like a
// credential ([secret.Is]): stage parameters, target overrides and a
// plugin target's config. Specs are committed; plans and run records mask
// such values, but the repository keeps them.
func (l *loader) warnSecrets(p *Pipeline, raw cue.Value) {
	var paths []string
	collect := func(v any, base string) {
		secret.Find(v, base, func(path string) { paths = append(paths, path) })
	}
	for _, sn := range p.StageNames() {
		st := p.Stages[sn]
		collect(st.Params, st.Path+".params")
	}
	for _, tn := range p.TargetNames() {
		t := p.Targets[tn]
		for _, sn := range sortedKeys(t.Stages) {
			o := t.Stages[sn]
			collect(o.Params, o.Path+".params")
		}
		if cfg := t.Configs["config"]; cfg != nil {
			var v any
			if unmarshalJSON(cfg, &v) == nil {
				collect(v, t.Path+".config")
			}
		}
	}
	slices.Sort(paths)
	for _, path := range paths {
		if l.hasError(path) {
			continue
		}
		d := diag.Errorf(l.posAt(raw, splitPath(path)...), path, "%s looks like a credential: the spec would keep it in the repository", lastElem(splitPath(path))).
			WithFix("read it at run time: an environment variable (a plugin target's pass_env) or a Databricks secret scope; plans and run records show it as %s", secret.Mask)
		d.Severity = diag.Warning
		l.diags = append(l.diags, d)
	}
}
