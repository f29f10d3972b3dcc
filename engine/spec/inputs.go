package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/schemas"
)

// Parameters the schemas mark with an attribute: @pipectl(input) is a file
// or directory the stage reads, @pipectl(encoding) a Python text codec.
const (
	markInput    = "input"
	markEncoding = "encoding"
)

// markedParams returns the parameters of a stage type whose schema field
// carries @pipectl(kind), sorted. The caller holds s.mu.
func (s *Schema) markedParams(stageType, kind string) []string {
	defName, ok := paramsDef[stageType]
	if !ok {
		return nil
	}
	it, err := s.def(defName).Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var out []string
	for it.Next() {
		if a := it.Value().Attribute("pipectl"); a.Err() == nil && a.Contents() == kind {
			out = append(out, it.Selector().Unquoted())
		}
	}
	return out
}

// inputIssues checks the marked parameters of a stage on a target: an
// encoding Python does not know, and a local input path that does not
// exist on a stage the local executor runs. Paths with references are
// known only at run time (see inputWarnings); other executors read paths
// pipectl cannot see (Databricks Volumes). The caller holds s.mu.
func (p *Pipeline) inputIssues(s *Schema, target, stage string, resolved map[string]any) []ParamIssue {
	st := p.Stages[stage]
	var out []ParamIssue
	for _, k := range s.markedParams(st.Type, markEncoding) {
		if v, ok := resolved[k].(string); ok && !strings.Contains(v, "${") && !KnownEncoding(v) {
			out = append(out, ParamIssue{Field: k,
				Summary: fmt.Sprintf("%s %q is not a text encoding Python knows", k, truncate(v)),
				Fix:     "use a Python codec name such as utf-8, utf-8-sig, latin-1 or cp1252 (the list: schemas/encodings.txt)"})
		}
	}
	if p.StageExecutor(target, stage) != ExecutorLocal {
		return out
	}
	for _, k := range s.markedParams(st.Type, markInput) {
		v, ok := resolved[k].(string)
		if !ok || v == "" || strings.Contains(v, "${") {
			continue
		}
		if _, err := os.Stat(p.localPath(v)); err != nil {
			out = append(out, ParamIssue{Field: k,
				Summary: fmt.Sprintf("%s %s: %s", k, v, statReason(err)),
				Fix:     "check the path: relative paths are relative to the project root (the working directory, or -C DIR)"})
		}
	}
	return out
}

// inputWarnings returns warnings for input paths known only at run time
// (they contain a reference such as ${run.date}) whose fixed directory,
// before the first reference, does not exist on a local stage.
func (p *Pipeline) inputWarnings(s *Schema, target, stage string, resolved map[string]any) []ParamIssue {
	if p.StageExecutor(target, stage) != ExecutorLocal {
		return nil
	}
	var out []ParamIssue
	for _, k := range s.markedParams(p.Stages[stage].Type, markInput) {
		v, ok := resolved[k].(string)
		i := strings.Index(v, "${")
		if !ok || i < 0 {
			continue
		}
		dir := filepath.Dir(v[:i] + "x")
		if dir == "." || dir == string(filepath.Separator) {
			continue
		}
		if _, err := os.Stat(p.localPath(dir)); err != nil {
			out = append(out, ParamIssue{Field: k,
				Summary: fmt.Sprintf("%s %s is known only at run time; its directory %s %s", k, v, dir, statReason(err)),
				Fix:     "create the directory, or check the path (relative to the project root)"})
		}
	}
	return out
}

func (p *Pipeline) localPath(v string) string {
	if filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(p.root, filepath.FromSlash(v))
}

func statReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	default:
		return unwrapPathErr(err).Error()
	}
}

// checkInputWarnings adds the run-time path warnings of a stage on a
// target to the diagnostics (validate and every command that loads specs).
func (l *loader) checkInputWarnings(p *Pipeline, t *Target, st *Stage) {
	resolved, ds := p.resolveParams(l.schema, t.Name, st.Name, nil)
	if ds.HasErrors() {
		return
	}
	for _, is := range p.inputWarnings(l.schema, t.Name, st.Name, resolved) {
		pos, path := st.Pos, st.Path+".params."+is.Field
		if o := t.Stages[st.Name]; o != nil && hasKey(o.Params, is.Field) {
			pos, path = o.ParamPos[is.Field], o.Path+".params."+is.Field
		} else if hp, ok := st.ParamPos[is.Field]; ok {
			pos = hp
		}
		l.diags = append(l.diags, diag.Diagnostic{Severity: diag.Warning, Pos: pos, Path: path, Summary: is.Summary, Fix: is.Fix})
	}
}

var (
	encodingsOnce sync.Once
	encodingSet   map[string]bool
)

// KnownEncoding reports whether Python knows name as a text codec, per
// schemas/encodings.txt, comparing names as Python's codecs.lookup does.
func KnownEncoding(name string) bool {
	encodingsOnce.Do(func() {
		encodingSet = map[string]bool{}
		b, _ := fs.ReadFile(schemas.FS, "encodings.txt")
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				encodingSet[line] = true
			}
		}
	})
	return encodingSet[normalizeEncoding(name)]
}

// normalizeEncoding is Python's encodings.normalize_encoding of the name
// in lower case: runs of characters other than letters, digits and '.'
// become one '_' (none at the ends); non-ASCII letters are dropped.
func normalizeEncoding(name string) string {
	var b strings.Builder
	punct := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' {
			if punct && b.Len() > 0 {
				b.WriteByte('_')
			}
			if r < unicode.MaxASCII {
				b.WriteRune(r)
			}
			punct = false
		} else {
			punct = true
		}
	}
	return b.String()
}
