package workflows

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

var annotationRe = regexp.MustCompile(`^\s*pipectl-test:(.*)$`)

// scanScript parses a bash script and returns its simple commands, those
// in command substitutions included, and its `# pipectl-test:` comments:
// the variables bound at run time, and what they range over.
func scanScript(src string) ([]*syntax.CallExpr, map[string]string, error) {
	file, err := syntax.NewParser(syntax.KeepComments(true), syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return nil, nil, err
	}
	var calls []*syntax.CallExpr
	ann := map[string]string{}
	syntax.Walk(file, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			if len(n.Args) > 0 {
				calls = append(calls, n)
			}
		case *syntax.Comment:
			if m := annotationRe.FindStringSubmatch(n.Text); m != nil {
				for _, f := range strings.Fields(m[1]) {
					name, what, _ := strings.Cut(f, "=")
					if what != "each-pipeline" && what != "each-target" {
						err = fmt.Errorf("line %d: pipectl-test annotation %q: want NAME=each-pipeline or NAME=each-target", n.Pos().Line(), f)
					}
					ann[name] = what
				}
			}
		}
		return true
	})
	return calls, ann, err
}

// literal is a word as written, without its quotes: enough to tell a
// command name such as "$bin/pipectl" without expanding it.
func literal(w *syntax.Word) string {
	var b strings.Builder
	syntax.NewPrinter().Print(&b, w)
	return strings.Trim(b.String(), `"'`)
}

// pipectlArgs returns the arguments of a pipectl command: `pipectl ...`,
// `path/to/pipectl ...` or `go run [flags] ./cmd/pipectl ...`.
func pipectlArgs(words []*syntax.Word) ([]*syntax.Word, bool) {
	if name := literal(words[0]); name == "pipectl" || strings.HasSuffix(name, "/pipectl") {
		return words[1:], true
	}
	for i := 2; i < len(words) && literal(words[0]) == "go" && literal(words[1]) == "run"; i++ {
		switch pkg := strings.TrimSuffix(literal(words[i]), "/"); {
		case pkg == "./cmd/pipectl" || pkg == "github.com/pipectl/pipectl/cmd/pipectl":
			return words[i+1:], true
		case !strings.HasPrefix(pkg, "-"):
			return nil, false
		}
	}
	return nil, false
}

// expandLoops expands the words for each value of the annotated loop
// variables: each pipeline and each of its targets.
func expandLoops(words []*syntax.Word, ann map[string]string, env map[string]value, pipelines map[string][]string) ([][]string, error) {
	loops := []map[string]value{env}
	if len(ann) > 0 && len(pipelines) == 0 {
		return nil, errors.New("annotated loop variables, but no pipelines to range over")
	} else if len(ann) > 0 {
		loops = nil
		for _, p := range slices.Sorted(maps.Keys(pipelines)) {
			for _, t := range pipelines[p] {
				loops = append(loops, maps.Clone(env))
				for name, what := range ann {
					loops[len(loops)-1][name] = strValue(map[string]string{"each-pipeline": p, "each-target": t}[what])
				}
			}
		}
	}
	var out [][]string
	for _, loop := range loops {
		args, err := expandWords(words, loop)
		if err != nil {
			return nil, err
		}
		out = append(out, args)
	}
	return out, nil
}

// environ gives the expansion the shell variables: env: and loops.
type environ map[string]value

func (e environ) Get(name string) expand.Variable {
	v, ok := e[name]
	return expand.Variable{Set: ok, Kind: expand.String, Str: v.String()}
}

func (e environ) Each(func(string, expand.Variable) bool) {}

// expandWords expands words as bash would, without globbing; an unset
// variable or a command substitution is an error.
func expandWords(words []*syntax.Word, env map[string]value) ([]string, error) {
	args, err := expand.Fields(&expand.Config{Env: environ(env), NoUnset: true}, words...)
	var unset expand.UnsetParameterError
	var cmd expand.UnexpectedCommandError
	switch {
	case errors.As(err, &unset):
		name := unset.Node.Param.Value
		return nil, fmt.Errorf("$%s is not set by the env: of the step, job or workflow (nor annotated with # pipectl-test: %s=each-pipeline|each-target)", name, name)
	case errors.As(err, &cmd):
		var b strings.Builder
		syntax.NewPrinter().Print(&b, cmd.Node)
		return nil, fmt.Errorf("cannot tell the value of %s: pass pipectl arguments through env: or literals", b.String())
	}
	return args, err
}
