package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// File is a workflow (.github/workflows/*.yml) or a composite action's
// metadata (action.yml). For an action, Jobs holds one job, "runs", with
// the action's steps.
type File struct {
	// Path is the path the file was loaded from.
	Path string
	// Action is true for composite action metadata.
	Action bool
	Name   string
	// Events are the trigger names, sorted.
	Events []string
	Crons  []Cron
	// Inputs are the workflow_dispatch inputs, or an action's inputs.
	Inputs      []Input
	Permissions Permissions
	Env         []Var
	Jobs        []*Job
}

// Cron is one on.schedule entry.
type Cron struct {
	Expr string
	Line int
}

// Input is a workflow_dispatch (or action) input.
type Input struct {
	Name    string
	Type    string // choice, boolean, string, number, environment
	Default string
	Options []string
	Line    int
}

// Var is one env: entry; Value may hold ${{ }} expressions.
type Var struct {
	Name  string
	Value string
	Line  int
}

// Permissions is a permissions: block.
type Permissions struct {
	// Set is true when the block is present ({} included).
	Set bool
	// All is "read-all" or "write-all" when the block is that string.
	All string
	// Scopes maps a scope (contents, id-token, ...) to read, write or none.
	Scopes map[string]string
	Line   int
}

// Job is one job of a workflow.
type Job struct {
	ID   string
	Name string
	Line int
	If   string
	// Environment is the environment name (expressions allowed).
	Environment string
	Concurrency Concurrency
	Permissions Permissions
	Env         []Var
	Matrix      *Matrix
	Steps       []*Step
}

// Concurrency is a job's concurrency: block.
type Concurrency struct {
	Set              bool
	Group            string
	CancelInProgress string
	Line             int
}

// Matrix is strategy.matrix: lists of values by key, plus include and
// exclude entries. Values YAML types as booleans or numbers are kept as
// expressions ("${{ true }}"), so that they test and compare as GitHub's
// do. A matrix given as one expression (fromJSON) is Expression, and its
// values are unknown.
type Matrix struct {
	Keys       []string
	Values     map[string][]string
	Include    []map[string]string
	Exclude    []map[string]string
	Expression string
	Line       int
}

// Step is one step of a job or composite action.
type Step struct {
	Name string
	ID   string
	Line int
	If   string
	Uses string
	// UsesComment is the comment after uses:, e.g. "# v6.0.2".
	UsesComment string
	UsesLine    int
	Run         string
	// RunLine is the file line of the script's first line.
	RunLine int
	Shell   string
	Env     []Var
}

// Label names a step for messages: its name, else its uses or first line.
func (s *Step) Label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Uses != "":
		return s.Uses
	default:
		first, _, _ := strings.Cut(strings.TrimSpace(s.Run), "\n")
		return first
	}
}

// LoadDir loads every workflow in dir/.github/workflows and every composite
// action metadata file under dir/.github/actions, sorted by path.
func LoadDir(dir string) ([]*File, error) {
	var paths []string
	for _, pat := range []string{
		".github/workflows/*.yml", ".github/workflows/*.yaml",
		".github/actions/*/action.yml", ".github/actions/*/action.yaml",
	} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		paths = append(paths, m...)
	}
	sort.Strings(paths)
	var files []*File
	for _, p := range paths {
		f, err := Load(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Load parses one workflow or action metadata file; a file named
// action.yml or action.yaml is an action.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path)
	return Parse(path, b, base == "action.yml" || base == "action.yaml")
}

// Parse parses src, read from path.
func Parse(path string, src []byte, action bool) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	p := &parser{path: path}
	f := &File{Path: path, Action: action}
	root := doc.Content[0]
	if action {
		p.action(f, root)
	} else {
		p.workflow(f, root)
	}
	if p.err != nil {
		return nil, p.err
	}
	return f, nil
}

type parser struct {
	path string
	err  error
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%s:%d: %s", p.path, n.Line, fmt.Sprintf(format, args...))
	}
}

// each calls fn for each key/value pair of a mapping node.
func each(n *yaml.Node, fn func(k, v *yaml.Node)) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		fn(n.Content[i], n.Content[i+1])
	}
}

func get(n *yaml.Node, key string) *yaml.Node {
	var out *yaml.Node
	each(n, func(k, v *yaml.Node) {
		if k.Value == key {
			out = v
		}
	})
	return out
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// firstLine is the file line of a scalar's first line of text: block
// scalars (| and >) start on the line after their indicator.
func firstLine(n *yaml.Node) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + 1
	}
	return n.Line
}

func (p *parser) workflow(f *File, root *yaml.Node) {
	f.Name = scalar(get(root, "name"))
	// "on" may be a string, a list of strings, or a mapping.
	on := get(root, "on")
	switch {
	case on == nil:
		p.fail(root, "workflow has no on:")
	case on.Kind == yaml.ScalarNode:
		f.Events = []string{on.Value}
	case on.Kind == yaml.SequenceNode:
		for _, e := range on.Content {
			f.Events = append(f.Events, e.Value)
		}
	case on.Kind == yaml.MappingNode:
		each(on, func(k, v *yaml.Node) {
			f.Events = append(f.Events, k.Value)
			switch k.Value {
			case "schedule":
				for _, item := range v.Content {
					if c := get(item, "cron"); c != nil {
						f.Crons = append(f.Crons, Cron{Expr: c.Value, Line: c.Line})
					}
				}
			case "workflow_dispatch":
				f.Inputs = p.inputs(get(v, "inputs"))
			}
		})
	}
	sort.Strings(f.Events)
	f.Permissions = p.permissions(get(root, "permissions"))
	f.Env = p.env(get(root, "env"))
	each(get(root, "jobs"), func(k, v *yaml.Node) {
		f.Jobs = append(f.Jobs, p.job(k.Value, k, v))
	})
}

func (p *parser) action(f *File, root *yaml.Node) {
	f.Name = scalar(get(root, "name"))
	f.Inputs = p.inputs(get(root, "inputs"))
	runs := get(root, "runs")
	if runs == nil {
		p.fail(root, "action has no runs:")
		return
	}
	job := &Job{ID: "runs", Line: runs.Line}
	if steps := get(runs, "steps"); steps != nil {
		for _, s := range steps.Content {
			job.Steps = append(job.Steps, p.step(s))
		}
	}
	f.Jobs = []*Job{job}
}

func (p *parser) inputs(n *yaml.Node) []Input {
	var out []Input
	each(n, func(k, v *yaml.Node) {
		in := Input{Name: k.Value, Line: k.Line, Type: scalar(get(v, "type")), Default: scalar(get(v, "default"))}
		if in.Type == "" {
			in.Type = "string"
		}
		if opts := get(v, "options"); opts != nil {
			for _, o := range opts.Content {
				in.Options = append(in.Options, o.Value)
			}
		}
		out = append(out, in)
	})
	return out
}

func (p *parser) permissions(n *yaml.Node) Permissions {
	if n == nil {
		return Permissions{}
	}
	perm := Permissions{Set: true, Line: n.Line, Scopes: map[string]string{}}
	switch n.Kind {
	case yaml.ScalarNode:
		perm.All = n.Value
	case yaml.MappingNode:
		each(n, func(k, v *yaml.Node) { perm.Scopes[k.Value] = v.Value })
	default:
		p.fail(n, "permissions: must be a mapping or read-all/write-all")
	}
	return perm
}

func (p *parser) env(n *yaml.Node) []Var {
	var out []Var
	each(n, func(k, v *yaml.Node) {
		out = append(out, Var{Name: k.Value, Value: v.Value, Line: v.Line})
	})
	return out
}

func (p *parser) job(id string, key, n *yaml.Node) *Job {
	j := &Job{ID: id, Line: key.Line, Name: scalar(get(n, "name")), If: scalar(get(n, "if"))}
	if env := get(n, "environment"); env != nil {
		if env.Kind == yaml.MappingNode {
			j.Environment = scalar(get(env, "name"))
		} else {
			j.Environment = env.Value
		}
	}
	if c := get(n, "concurrency"); c != nil {
		j.Concurrency = Concurrency{Set: true, Line: c.Line}
		if c.Kind == yaml.ScalarNode {
			j.Concurrency.Group = c.Value
		} else {
			j.Concurrency.Group = scalar(get(c, "group"))
			j.Concurrency.CancelInProgress = scalar(get(c, "cancel-in-progress"))
		}
	}
	j.Permissions = p.permissions(get(n, "permissions"))
	j.Env = p.env(get(n, "env"))
	if m := get(get(n, "strategy"), "matrix"); m != nil {
		j.Matrix = p.matrix(m)
	}
	if steps := get(n, "steps"); steps != nil {
		for _, s := range steps.Content {
			j.Steps = append(j.Steps, p.step(s))
		}
	}
	return j
}

func (p *parser) matrix(n *yaml.Node) *Matrix {
	m := &Matrix{Values: map[string][]string{}, Line: n.Line}
	if n.Kind == yaml.ScalarNode {
		m.Expression = n.Value
		return m
	}
	rows := func(v *yaml.Node) []map[string]string {
		var out []map[string]string
		if v.Kind != yaml.SequenceNode {
			p.fail(v, "matrix include/exclude must be a list")
			return nil
		}
		for _, item := range v.Content {
			row := map[string]string{}
			each(item, func(k, v *yaml.Node) { row[k.Value] = matrixValue(v) })
			out = append(out, row)
		}
		return out
	}
	each(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "include":
			m.Include = rows(v)
		case "exclude":
			m.Exclude = rows(v)
		default:
			if v.Kind != yaml.SequenceNode {
				// A key given as an expression: its values are unknown.
				m.Values[k.Value] = []string{v.Value}
			} else {
				for _, item := range v.Content {
					m.Values[k.Value] = append(m.Values[k.Value], matrixValue(item))
				}
			}
			m.Keys = append(m.Keys, k.Value)
		}
	})
	return m
}

// matrixValue keeps a typed matrix value as an expression of its type.
func matrixValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Style == 0 {
		switch n.ShortTag() {
		case "!!bool":
			return "${{ " + strings.ToLower(n.Value) + " }}"
		case "!!int", "!!float":
			return "${{ " + n.Value + " }}"
		case "!!null":
			return "${{ null }}"
		}
	}
	return n.Value
}

func (p *parser) step(n *yaml.Node) *Step {
	s := &Step{Line: n.Line, Name: scalar(get(n, "name")), ID: scalar(get(n, "id")), If: scalar(get(n, "if")), Shell: scalar(get(n, "shell"))}
	if u := get(n, "uses"); u != nil {
		s.Uses, s.UsesLine, s.UsesComment = u.Value, u.Line, strings.TrimSpace(u.LineComment)
	}
	if r := get(n, "run"); r != nil {
		s.Run, s.RunLine = r.Value, firstLine(r)
	}
	s.Env = p.env(get(n, "env"))
	return s
}

// HasEvent reports whether the workflow triggers on event.
func (f *File) HasEvent(event string) bool { return slices.Contains(f.Events, event) }
