package workflows

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rhysd/actionlint"
	yaml "go.yaml.in/yaml/v3"
)

// File is a workflow parsed by actionlint, or a composite action's
// metadata read as a workflow with one job, "runs", whose steps keep their
// lines.
type File struct {
	Path     string
	Action   bool // composite action metadata
	Workflow *actionlint.Workflow
	inputs   map[string]string // an action's inputs and their defaults
	lines    []string
}

// LoadDir loads every workflow in dir/.github/workflows and every composite
// action under dir/.github/actions, sorted by path.
func LoadDir(dir string) ([]*File, error) {
	wf, _ := filepath.Glob(filepath.Join(dir, ".github/workflows/*.y*ml"))
	actions, _ := filepath.Glob(filepath.Join(dir, ".github/actions/*/action.y*ml"))
	var files []*File
	for _, p := range append(wf, actions...) {
		f, err := Load(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Load parses one workflow, or action metadata if named action.y[a]ml.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, strings.HasPrefix(filepath.Base(path), "action.y"))
}

// Parse parses src, read from path.
func Parse(path string, src []byte, action bool) (*File, error) {
	f := &File{Path: path, Action: action, lines: strings.Split(string(src), "\n")}
	if action {
		if err := f.actionAsWorkflow(src); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		src = []byte(strings.Join(f.lines, "\n"))
	}
	w, errs := actionlint.Parse(src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s:%d:%d: %s", path, errs[0].Line, errs[0].Column, errs[0].Message)
	}
	f.Workflow = w
	return f, nil
}

// actionAsWorkflow rewrites a composite action's lines as a workflow that
// actionlint parses, line for line: the lines above runs.steps become the
// head of a workflow with one job, and runs.steps, which must end the file,
// moves two columns right to become the job's steps.
func (f *File) actionAsWorkflow(src []byte) error {
	var meta struct {
		Inputs map[string]struct{ Default string }
		Runs   struct{ Steps yaml.Node }
	}
	if err := yaml.Unmarshal(src, &meta); err != nil {
		return err
	}
	f.inputs = map[string]string{}
	for name, in := range meta.Inputs {
		f.inputs[strings.ToLower(name)] = in.Default
	}
	steps := meta.Runs.Steps.Line - 2 // the index of the line "  steps:"
	if steps < 4 || !strings.HasPrefix(f.lines[steps], "  steps:") {
		return fmt.Errorf("want runs:, using: composite and steps: at the end of the file")
	}
	head := []string{"on: workflow_dispatch", "jobs:", "  runs:", "    runs-on: ubuntu-latest"}
	for i := range f.lines {
		switch {
		case i < len(head):
			f.lines[i] = head[i]
		case i < steps:
			f.lines[i] = ""
		default:
			f.lines[i] = "  " + f.lines[i]
		}
	}
	return nil
}

// Jobs returns the jobs in file order.
func (f *File) Jobs() []*actionlint.Job {
	return slices.SortedFunc(maps.Values(f.Workflow.Jobs), func(a, b *actionlint.Job) int { return a.Pos.Line - b.Pos.Line })
}

// Events returns the trigger names; "" alone for an action, whose steps
// run on whatever event runs the job that uses it.
func (f *File) Events() []string {
	if f.Action {
		return []string{""}
	}
	var out []string
	for _, e := range f.Workflow.On {
		out = append(out, e.EventName())
	}
	return out
}

// Crons returns the on.schedule entries' cron expressions.
func (f *File) Crons() []*actionlint.String {
	var out []*actionlint.String
	for _, e := range f.Workflow.On {
		if s, ok := e.(*actionlint.ScheduledEvent); ok {
			for _, c := range s.Schedules {
				out = append(out, c.Cron)
			}
		}
	}
	return out
}

// Comment returns the comment that ends the line of s, such as the
// release tag after a pinned uses: ("# v6.0.2").
func (f *File) Comment(s *actionlint.String) string {
	line := f.lines[s.Pos.Line-1]
	if i := strings.LastIndex(line, " #"); i >= 0 && strings.Contains(line[:i], s.Value) {
		return strings.TrimSpace(line[i+1:])
	}
	return ""
}
