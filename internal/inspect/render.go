package inspect

import (
	"fmt"
	"regexp"
	"strings"

	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
)

// RunArgs are the arguments of `pipectl run PIPELINE` that run the
// pipeline on the file: one --set STAGE.PARAM=VALUE per parameter.
func RunArgs(pipeline, stage string, params []Param) []string {
	args := []string{"run", pipeline}
	for _, p := range params {
		args = append(args, "--set", stage+"."+p.Name+"="+p.Value)
	}
	return args
}

var cueIdent = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./=:@%+,-]+$`)

// ShellQuote quotes s for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ShellCommand joins a command line for a POSIX shell.
func ShellCommand(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = ShellQuote(a)
	}
	return strings.Join(out, " ")
}

// CUEStage is a data stage named stage with params, formatted as CUE (as
// `cue fmt` writes it), to paste into a pipeline's stages.
func CUEStage(stage string, params []Param) ([]byte, error) {
	var b strings.Builder
	label := stage
	if !cueIdent.MatchString(stage) {
		label = literal.Label.Quote(stage)
	}
	fmt.Fprintf(&b, "%s: {\ntype: \"data\"\nparams: {\n", label)
	for _, p := range params {
		fmt.Fprintf(&b, "%s: %s\n", p.Name, literal.String.Quote(p.Value))
	}
	b.WriteString("}\n}\n")
	return format.Source([]byte(b.String()))
}
