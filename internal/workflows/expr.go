package workflows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rhysd/actionlint"
)

// value is the result of evaluating an expression: null, a boolean, a
// number, a string, or unknown (a value the file cannot tell, such as
// github.sha or a secret).
type value struct {
	kind valueKind
	s    string
	b    bool
	n    float64
	// why names what made an unknown value unknown.
	why string
}

type valueKind int

const (
	null valueKind = iota
	boolean
	number
	str
	unknown
)

func strValue(s string) value { return value{kind: str, s: s} }
func boolValue(b bool) value  { return value{kind: boolean, b: b} }
func unknownValue(why string) value {
	return value{kind: unknown, why: why}
}

// unknownMark brackets an unknown value inside interpolated text; it
// cannot come from a workflow file, so it survives until a pipectl argument
// is checked.
const unknownMark = "\x00"

// String converts a value as GitHub does when it interpolates it.
func (v value) String() string {
	switch v.kind {
	case null:
		return ""
	case boolean:
		return strconv.FormatBool(v.b)
	case number:
		return strconv.FormatFloat(v.n, 'f', -1, 64)
	case str:
		return v.s
	default:
		return unknownMark + v.why + unknownMark
	}
}

// truthy reports GitHub's truthiness; ok is false for unknown values.
func (v value) truthy() (t, ok bool) {
	switch v.kind {
	case null:
		return false, true
	case boolean:
		return v.b, true
	case number:
		return v.n != 0, true
	case str:
		return v.s != "", true
	default:
		return false, false
	}
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
	// env resolves env.NAME: the env: of the enclosing levels.
	env func(name string) (value, bool, error)
	// assume holds the decided conditions, by their text.
	assume map[string]bool
}

// evalExpr evaluates the expression inside ${{ }}.
func (sc *scope) evalExpr(src string) (value, error) {
	node, perr := actionlint.NewExprParser().Parse(actionlint.NewExprLexer(src + "}}"))
	if perr != nil {
		return value{}, fmt.Errorf("expression %q: %s", src, perr.Message)
	}
	return sc.eval(node)
}

// condition decides a condition the file cannot: from the assumptions, or
// by asking the caller.
func (sc *scope) condition(n actionlint.ExprNode) (bool, error) {
	text := exprText(n)
	if b, ok := sc.assume[text]; ok {
		return b, nil
	}
	return false, &needCondition{text: text}
}

func (sc *scope) truth(n actionlint.ExprNode, v value) (bool, error) {
	if t, ok := v.truthy(); ok {
		return t, nil
	}
	return sc.condition(n)
}

func (sc *scope) eval(n actionlint.ExprNode) (value, error) {
	switch n := n.(type) {
	case *actionlint.NullNode:
		return value{}, nil
	case *actionlint.BoolNode:
		return boolValue(n.Value), nil
	case *actionlint.IntNode:
		return value{kind: number, n: float64(n.Value)}, nil
	case *actionlint.FloatNode:
		return value{kind: number, n: n.Value}, nil
	case *actionlint.StringNode:
		return strValue(n.Value), nil
	case *actionlint.VariableNode, *actionlint.ObjectDerefNode, *actionlint.IndexAccessNode:
		path, ok := propertyPath(n)
		if !ok {
			return unknownValue(exprText(n)), nil
		}
		return sc.lookup(path)
	case *actionlint.NotOpNode:
		v, err := sc.eval(n.Operand)
		if err != nil {
			return value{}, err
		}
		t, err := sc.truth(n.Operand, v)
		return boolValue(!t), err
	case *actionlint.LogicalOpNode:
		l, err := sc.eval(n.Left)
		if err != nil {
			return value{}, err
		}
		t, err := sc.truth(n.Left, l)
		if err != nil {
			return value{}, err
		}
		if (n.Kind == actionlint.LogicalOpNodeKindAnd) != t {
			return l, nil // && stops at a falsy left side, || at a truthy one
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
		}
		if l.kind == unknown || r.kind == unknown {
			b, err := sc.condition(n)
			return boolValue(b), err
		}
		return boolValue(compare(n.Kind, l, r)), nil
	case *actionlint.FuncCallNode:
		return sc.call(n)
	default:
		return unknownValue(exprText(n)), nil
	}
}

// call evaluates the functions whose result the file can tell; the others
// (status functions, toJSON, hashFiles, ...) are conditions or unknown.
func (sc *scope) call(n *actionlint.FuncCallNode) (value, error) {
	args := make([]value, len(n.Args))
	known := true
	for i, a := range n.Args {
		v, err := sc.eval(a)
		if err != nil {
			return value{}, err
		}
		args[i] = v
		known = known && v.kind != unknown
	}
	name := strings.ToLower(n.Callee)
	switch name {
	case "startswith", "endswith", "contains":
		if !known || len(args) != 2 {
			b, err := sc.condition(n)
			return boolValue(b), err
		}
		a, b := strings.ToLower(args[0].String()), strings.ToLower(args[1].String())
		switch name {
		case "startswith":
			return boolValue(strings.HasPrefix(a, b)), nil
		case "endswith":
			return boolValue(strings.HasSuffix(a, b)), nil
		default:
			return boolValue(strings.Contains(a, b)), nil
		}
	case "success", "failure", "always", "cancelled":
		b, err := sc.condition(n)
		return boolValue(b), err
	case "format":
		if !known || len(args) == 0 {
			return unknownValue(exprText(n)), nil
		}
		out := args[0].String()
		for i, a := range args[1:] {
			out = strings.ReplaceAll(out, "{"+strconv.Itoa(i)+"}", a.String())
		}
		return strValue(out), nil
	default:
		return unknownValue(exprText(n)), nil
	}
}

// lookup resolves a context property: inputs, matrix, env and
// github.event_name are known; everything else is unknown.
func (sc *scope) lookup(path []string) (value, error) {
	text := strings.Join(path, ".")
	if len(path) != 2 {
		return unknownValue(text), nil
	}
	switch path[0] {
	case "inputs":
		if v, ok := sc.inputs[strings.ToLower(path[1])]; ok {
			return v, nil
		}
		return value{}, nil // inputs of other triggers are null
	case "matrix":
		if v, ok := sc.matrix[strings.ToLower(path[1])]; ok {
			return v, nil
		}
	case "env":
		if sc.env != nil {
			// actionlint's parser lowercases property names, shell names
			// are case-sensitive: try lower case and upper case, the
			// convention for env.
			for _, name := range []string{path[1], strings.ToUpper(path[1])} {
				v, ok, err := sc.env(name)
				if err != nil || ok {
					return v, err
				}
			}
		}
	case "github":
		if strings.ToLower(path[1]) == "event_name" && sc.event != "" {
			return strValue(sc.event), nil
		}
	}
	return unknownValue(text), nil
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
		s, isStr := n.Index.(*actionlint.StringNode)
		if !isStr {
			return nil, false
		}
		p, ok := propertyPath(n.Operand)
		return append(p, s.Value), ok
	}
	return nil, false
}

// compare implements GitHub's comparison: strings case-insensitively,
// mixed kinds as numbers.
func compare(kind actionlint.CompareOpNodeKind, l, r value) bool {
	var c int
	if l.kind == str && r.kind == str {
		c = strings.Compare(strings.ToLower(l.s), strings.ToLower(r.s))
	} else {
		ln, rn := toNumber(l), toNumber(r)
		switch {
		case ln < rn:
			c = -1
		case ln > rn:
			c = 1
		}
	}
	switch kind {
	case actionlint.CompareOpNodeKindEq:
		return c == 0
	case actionlint.CompareOpNodeKindNotEq:
		return c != 0
	case actionlint.CompareOpNodeKindLess:
		return c < 0
	case actionlint.CompareOpNodeKindLessEq:
		return c <= 0
	case actionlint.CompareOpNodeKindGreater:
		return c > 0
	default:
		return c >= 0
	}
}

func toNumber(v value) float64 {
	switch v.kind {
	case boolean:
		if v.b {
			return 1
		}
		return 0
	case number:
		return v.n
	case str:
		if strings.TrimSpace(v.s) == "" {
			return 0
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
		if err != nil {
			return -1e308 // NaN compares unequal to everything; close enough here
		}
		return f
	}
	return 0
}

// exprText prints an expression canonically: a condition is decided once
// wherever it is written.
func exprText(n actionlint.ExprNode) string {
	switch n := n.(type) {
	case *actionlint.NullNode:
		return "null"
	case *actionlint.BoolNode:
		return strconv.FormatBool(n.Value)
	case *actionlint.IntNode:
		return strconv.Itoa(n.Value)
	case *actionlint.FloatNode:
		return strconv.FormatFloat(n.Value, 'g', -1, 64)
	case *actionlint.StringNode:
		return "'" + strings.ReplaceAll(n.Value, "'", "''") + "'"
	case *actionlint.VariableNode, *actionlint.ObjectDerefNode, *actionlint.IndexAccessNode:
		if p, ok := propertyPath(n); ok {
			return strings.Join(p, ".")
		}
		if ix, ok := n.(*actionlint.IndexAccessNode); ok {
			return exprText(ix.Operand) + "[" + exprText(ix.Index) + "]"
		}
		if od, ok := n.(*actionlint.ObjectDerefNode); ok {
			return exprText(od.Receiver) + "." + od.Property
		}
	case *actionlint.ArrayDerefNode:
		return exprText(n.Receiver) + ".*"
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
	return fmt.Sprintf("%T", n)
}

// interpolate replaces every ${{ expr }} in s with its value as text;
// unknown values stay marked (see unknownMark).
func (sc *scope) interpolate(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", errors.New("unterminated ${{ in " + strconvQuote(s))
		}
		v, err := sc.evalExpr(s[i+3 : i+j])
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(v.String())
		s = s[i+j+2:]
	}
}

// evalValue evaluates a whole field: a lone ${{ expr }} keeps its type,
// anything else is interpolated text.
func (sc *scope) evalValue(s string) (value, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		return sc.evalExpr(t[3 : len(t)-2])
	}
	out, err := sc.interpolate(s)
	if err != nil {
		return value{}, err
	}
	if strings.Contains(out, unknownMark) {
		return unknownValue(strings.Trim(out, unknownMark)), nil
	}
	return strValue(out), nil
}

// evalIf evaluates an if: condition, written with or without ${{ }}.
func (sc *scope) evalIf(cond string) (bool, error) {
	t := strings.TrimSpace(cond)
	if t == "" {
		return true, nil
	}
	if !strings.Contains(t, "${{") {
		t = "${{ " + t + " }}"
	}
	v, err := sc.evalValue(t)
	if err != nil {
		return false, err
	}
	if b, ok := v.truthy(); ok {
		return b, nil
	}
	return sc.conditionText(strings.TrimSpace(cond))
}

func (sc *scope) conditionText(text string) (bool, error) {
	if b, ok := sc.assume[text]; ok {
		return b, nil
	}
	return false, &needCondition{text: text}
}

func strconvQuote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return strconv.Quote(s)
}
