package spec

import (
	"strconv"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/token"

	"github.com/pipectl/pipectl/engine/diag"
)

// checkDefinedOnce applies the rule of docs/SPECS.md: a pipeline is
// defined in one file. CUE would unify `pipelines: demo: {...}` written in
// two files of a package — a copied file with the name unchanged would
// silently add its stages and targets to the other's, or conflict on one
// field with only one side named. Shared values go in hidden fields or
// definitions, unified into the one definition; pattern constraints
// (`pipelines: [string]: {...}`) are not definitions of a name.
//
// Reads: the syntax of the instance's files. Updates: defined, diagnostics.
func (l *loader) checkDefinedOnce(inst *build.Instance) {
	if l.defined == nil {
		l.defined = map[string]token.Pos{}
	}
	for _, f := range inst.Files {
		seen := map[string]bool{}
		for _, decl := range f.Decls {
			field, ok := decl.(*ast.Field)
			if !ok || labelName(field.Label) != "pipelines" {
				continue
			}
			st, ok := field.Value.(*ast.StructLit)
			if !ok {
				continue
			}
			for _, elt := range st.Elts {
				pf, ok := elt.(*ast.Field)
				if !ok {
					continue
				}
				name := labelName(pf.Label)
				if name == "" || seen[name] {
					continue
				}
				seen[name] = true
				pos := pf.Label.Pos()
				first, ok := l.defined[name]
				if !ok {
					l.defined[name] = pos
					continue
				}
				if first.Filename() == pos.Filename() {
					continue
				}
				l.diags = append(l.diags, diag.Errorf(toPos(pos), "pipelines."+name,
					"pipeline %q is defined in two files", name).
					WithDetail("first defined at %s", diag.RelPos(toPos(first), l.opts.Root)).
					WithFix("a pipeline is defined in one file: rename one, or move shared values into a hidden field (_name: {...}) unified into it"))
				l.twice = append(l.twice, name)
			}
		}
	}
}

// labelName returns a field label's name: an identifier or a quoted
// string; "" for patterns, definitions and interpolations.
func labelName(lab ast.Label) string {
	switch x := lab.(type) {
	case *ast.Ident:
		if len(x.Name) > 0 && (x.Name[0] == '#' || x.Name[0] == '_') {
			return ""
		}
		return x.Name
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			if s, err := strconv.Unquote(x.Value); err == nil {
				return s
			}
		}
	}
	return ""
}
