package workflows

import (
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	"github.com/rhysd/actionlint"
)

// value is the result of evaluating an expression: null, a boolean, a
// string, or unknown: a value the file cannot tell, such as github.sha, a
// secret or a number. s is its text: "true" or "false" for a boolean, and
// for an unknown value text with markers that name what is unknown.
type value struct {
	kind valueKind
	s    string
}

type valueKind int

const (
	null valueKind = iota
	boolean
	str
	unknown
)

func strValue(s string) value        { return value{str, s} }
func boolValue(b bool) value         { return value{boolean, strconv.FormatBool(b)} }
func unknownValue(what string) value { return value{unknown, markUnknown(what)} }

// String converts a value as GitHub does when it interpolates it.
func (v value) String() string { return v.s }

// truthy reports GitHub's truthiness; ok is false for unknown values.
func (v value) truthy() (t, ok bool) {
	return v.kind == boolean && v.s == "true" || v.kind == str && v.s != "", v.kind != unknown
}

// A marker names an unknown value in text with characters a shell keeps
// in one word, so that it lasts until a pipectl argument is checked.
var unknownRe = regexp.MustCompile(`__pipectl_unknown_([0-9a-f]*)__`)

func markUnknown(what string) string {
	return "__pipectl_unknown_" + hex.EncodeToString([]byte(what)) + "__"
}

// unknownIn names the first unknown value marked in s.
func unknownIn(s string) (what string, ok bool) {
	if m := unknownRe.FindStringSubmatch(s); m != nil {
		b, _ := hex.DecodeString(m[1])
		return string(b), true
	}
	return "", false
}

// needCondition asks the caller to decide a condition the file cannot:
// evaluation restarts once with it true and once false.
type needCondition struct{ text string }

func (e *needCondition) Error() string { return "undecided condition " + e.text }

// scope is what expressions can see in one way a job can run.
type scope struct {
	event  string
	inputs map[string]value
	matrix map[string]value
	env    map[string]value // the env: of the enclosing levels, evaluated
	assume map[string]bool  // the decided conditions, by their text
}

// withEnv returns sc with env: evaluated on top of its env; the values
// see the env: of the levels around it.
func (sc scope) withEnv(env *actionlint.Env) (*scope, error) {
	outer := sc
	sc.env = maps.Collect(maps.All(sc.env)) // a copy, never nil
	if env == nil {
		return &sc, nil
	}
	for _, v := range env.Vars { // none when env: is one expression: unset
		val, err := outer.evalValue(v.Value.Value)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", v.Name.Value, err)
		}
		sc.env[v.Name.Value] = val
	}
	return &sc, nil
}

// condition decides a condition the file cannot: from the assumptions, or
// by asking the caller.
func (sc *scope) condition(text string) (bool, error) {
	if b, ok := sc.assume[text]; ok {
		return b, nil
	}
	return false, &needCondition{text: text}
}

// test evaluates n and its truth; the truth of an unknown value is a
// condition.
func (sc *scope) test(n actionlint.ExprNode) (value, bool, error) {
	v, err := sc.eval(n)
	if t, ok := v.truthy(); ok || err != nil {
		return v, t, err
	}
	t, err := sc.condition(exprText(n))
	return v, t, err
}

func (sc *scope) eval(n actionlint.ExprNode) (value, error) {
	if path, ok := propertyPath(n); ok {
		return sc.lookup(path), nil
	}
	switch n := n.(type) {
	case *actionlint.NullNode:
		return value{}, nil
	case *actionlint.BoolNode:
		return boolValue(n.Value), nil
	case *actionlint.StringNode:
		return strValue(n.Value), nil
	case *actionlint.NotOpNode:
		_, t, err := sc.test(n.Operand)
		return boolValue(!t), err
	case *actionlint.LogicalOpNode:
		l, t, err := sc.test(n.Left)
		if err != nil || (n.Kind == actionlint.LogicalOpNodeKindAnd) != t {
			return l, err // && stops at a falsy left side, || at a truthy one
		}
		return sc.eval(n.Right)
	case *actionlint.CompareOpNode:
		l, err := sc.eval(n.Left)
		if err != nil {
			return value{}, err
		}
		r, err := sc.eval(n.Right)
		if err != nil {
			return value{}, err
		} else if l.kind == unknown || r.kind == unknown || l.kind != r.kind && !(min(l.kind, r.kind) == null && max(l.kind, r.kind) == str) {
			// GitHub compares mixed kinds as numbers; here only null and
			// a string are compared ("" for null), others left undecided.
			b, err := sc.condition(exprText(n))
			return boolValue(b), err
		}
		// Strings compare case-insensitively; false < true.
		c := strings.Compare(strings.ToLower(l.String()), strings.ToLower(r.String()))
		return boolValue(map[actionlint.CompareOpNodeKind]bool{
			actionlint.CompareOpNodeKindEq: c == 0, actionlint.CompareOpNodeKindNotEq: c != 0,
			actionlint.CompareOpNodeKindLess: c < 0, actionlint.CompareOpNodeKindLessEq: c <= 0,
			actionlint.CompareOpNodeKindGreater: c > 0, actionlint.CompareOpNodeKindGreaterEq: c >= 0,
		}[n.Kind]), nil
	case *actionlint.FuncCallNode:
		return sc.call(n)
	}
	return unknownValue(exprText(n)), nil
}

// call evaluates startsWith, endsWith and contains; status functions are
// conditions, other functions (format, toJSON, hashFiles, ...) unknown.
func (sc *scope) call(n *actionlint.FuncCallNode) (value, error) {
	args := make([]string, len(n.Args))
	known := true
	for i, a := range n.Args {
		v, err := sc.eval(a)
		if err != nil {
			return value{}, err
		}
		args[i], known = v.String(), known && v.kind != unknown
	}
	tests := map[string]func(string, string) bool{"startswith": strings.HasPrefix, "endswith": strings.HasSuffix, "contains": strings.Contains}
	switch name := strings.ToLower(n.Callee); {
	case tests[name] != nil && known && len(args) == 2:
		return boolValue(tests[name](strings.ToLower(args[0]), strings.ToLower(args[1]))), nil
	case tests[name] != nil || name == "success" || name == "failure" || name == "always" || name == "cancelled":
		b, err := sc.condition(exprText(n))
		return boolValue(b), err
	}
	return unknownValue(exprText(n)), nil
}

// lookup resolves a context property: inputs, matrix, env and
// github.event_name are known; everything else is unknown.
func (sc *scope) lookup(path []string) value {
	if len(path) == 2 {
		switch name := strings.ToLower(path[1]); path[0] {
		case "inputs":
			return sc.inputs[name] // inputs of other triggers are null
		case "matrix":
			if v, ok := sc.matrix[name]; ok {
				return v
			}
		case "env":
			// actionlint lowercases property names; env names are
			// case-sensitive: try them as written, then upper case.
			if v, ok := sc.env[path[1]]; ok {
				return v
			} else if v, ok := sc.env[strings.ToUpper(path[1])]; ok {
				return v
			}
		case "github":
			if name == "event_name" && sc.event != "" {
				return strValue(sc.event)
			}
		}
	}
	return unknownValue(strings.Join(path, "."))
}

// propertyPath turns inputs.target or matrix['pipeline'] into its path;
// the context name is lowercased (contexts are case-insensitive).
func propertyPath(n actionlint.ExprNode) ([]string, bool) {
	switch n := n.(type) {
	case *actionlint.VariableNode:
		return []string{strings.ToLower(n.Name)}, true
	case *actionlint.ObjectDerefNode:
		p, ok := propertyPath(n.Receiver)
		return append(p, n.Property), ok
	case *actionlint.IndexAccessNode:
		if s, ok := n.Index.(*actionlint.StringNode); ok {
			p, ok := propertyPath(n.Operand)
			return append(p, s.Value), ok
		}
	}
	return nil, false
}

// exprText prints an expression canonically, so that a condition is
// decided once wherever it is written. What it cannot print is a condition
// of its own at each place.
func exprText(n actionlint.ExprNode) string {
	if p, ok := propertyPath(n); ok {
		return strings.Join(p, ".")
	}
	switch n := n.(type) {
	case *actionlint.StringNode:
		return "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"
	case *actionlint.NullNode, *actionlint.BoolNode, *actionlint.IntNode, *actionlint.FloatNode:
		return n.Token().Value
	case *actionlint.NotOpNode:
		return "!" + exprText(n.Operand)
	case *actionlint.CompareOpNode:
		return "(" + exprText(n.Left) + " " + n.Kind.String() + " " + exprText(n.Right) + ")"
	case *actionlint.LogicalOpNode:
		return "(" + exprText(n.Left) + " " + n.Kind.String() + " " + exprText(n.Right) + ")"
	case *actionlint.FuncCallNode:
		args := make([]string, len(n.Args))
		for i, a := range n.Args {
			args[i] = exprText(a)
		}
		return strings.ToLower(n.Callee) + "(" + strings.Join(args, ", ") + ")"
	}
	return fmt.Sprintf("%T@%d:%d", n, n.Token().Line, n.Token().Column)
}

// evalExpr evaluates the expression at the start of src, the text after
// "${{", and returns the length of the expression and its "}}".
func (sc *scope) evalExpr(src string) (value, int, error) {
	lex := actionlint.NewExprLexer(src)
	node, perr := actionlint.NewExprParser().Parse(lex)
	if perr != nil {
		return value{}, 0, fmt.Errorf("expression %s: %s", strconv.Quote(src[:min(len(src), 60)]), perr.Message)
	}
	v, err := sc.eval(node)
	return v, lex.Offset(), err
}

// evalValue evaluates a field: a lone ${{ expr }} keeps its type,
// anything else is text with each ${{ expr }} replaced by its value
// (unknown values marked, see unknownRe).
func (sc *scope) evalValue(s string) (value, error) {
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		v, _, err := sc.evalExpr(t[3:])
		return v, err
	}
	var b strings.Builder
	for i := strings.Index(s, "${{"); i >= 0; i = strings.Index(s, "${{") {
		v, n, err := sc.evalExpr(s[i+3:])
		if err != nil {
			return value{}, err
		}
		b.WriteString(s[:i] + v.String())
		s = s[i+3+n:]
	}
	if b.WriteString(s); unknownRe.MatchString(b.String()) {
		return value{unknown, b.String()}, nil
	}
	return strValue(b.String()), nil
}

// str evaluates an optional field as text.
func (sc *scope) str(s *actionlint.String) (string, error) {
	if s == nil {
		return "", nil
	}
	v, err := sc.evalValue(s.Value)
	return v.String(), err
}

// evalIf evaluates an if: condition, written with or without ${{ }}.
func (sc *scope) evalIf(cond *actionlint.String) (bool, error) {
	if cond == nil || strings.TrimSpace(cond.Value) == "" {
		return true, nil
	}
	t := strings.TrimSpace(cond.Value)
	if !strings.Contains(t, "${{") {
		t = "${{ " + t + " }}"
	}
	v, err := sc.evalValue(t)
	if b, ok := v.truthy(); ok || err != nil {
		return b, err
	}
	return sc.condition(strings.TrimSpace(cond.Value))
}
