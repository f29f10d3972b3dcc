package spec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"

	"cuelang.org/go/cue"

	"github.com/pipectl/pipectl/engine/diag"
	"github.com/pipectl/pipectl/schemas"
)

// Parameters the schemas mark with @pipectl(encoding) are a Python text
// codec.
const markEncoding = "encoding"

// inputKindFile is the #InputKind of a file or directory input (the same
// string as executor.InputFile).
const inputKindFile = "file"

// markedParams returns the parameters of a stage type whose schema field
// carries @pipectl(kind), sorted. The caller holds s.mu.
func (s *Schema) markedParams(stageType, kind string) []string {
	defName, ok := s.paramsDef(stageType)
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

// encodingIssues reports @pipectl(encoding) parameters that name no text
// encoding Python knows. The caller holds s.mu.
func (p *Pipeline) encodingIssues(s *Schema, stage string, resolved map[string]any) []ParamIssue {
	var out []ParamIssue
	for _, k := range s.markedParams(p.Stages[stage].Type, markEncoding) {
		if v, ok := resolved[k].(string); ok && !strings.Contains(v, "${") && !KnownEncoding(v) {
			out = append(out, ParamIssue{Field: k,
				Summary: fmt.Sprintf("%s %q is not a text encoding Python knows", k, truncate(v)),
				Fix:     "use a Python codec name such as utf-8, utf-8-sig, latin-1 or cp1252 (the list: schemas/encodings.txt)"})
		}
	}
	return out
}

// CheckInputs checks the file inputs (#StageTypes[type].inputs and the
// stage's own inputs) of a stage on a target
// (resolved: its parameters from ResolveParams; sets: the --set values,
// for positions). On a stage the local executor runs, a path that does not
// exist is an error. A path with a reference is known only at run time: a
// warning when its fixed directory (before the first reference) is
// missing. Other executors read paths pipectl cannot see here (Databricks
// Volumes), so they are not checked.
//
// validate checks every target (Options.CheckInputs); plan and run check
// the target they run, so a file only a local target reads does not stop
// a run on Databricks.
func (p *Pipeline) CheckInputs(s *Schema, target, stage string, resolved, sets map[string]any) diag.Diagnostics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.checkInputs(s, target, stage, resolved, sets)
}

// checkInputs is CheckInputs with s.mu held.
func (p *Pipeline) checkInputs(s *Schema, target, stage string, resolved, sets map[string]any) diag.Diagnostics {
	st := p.Stages[stage]
	if st == nil || p.StageExecutor(target, stage) != ExecutorLocal {
		return nil
	}
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(st.Inputs)) {
		if st.Inputs[k] == inputKindFile {
			keys = append(keys, k)
		}
	}
	var ds diag.Diagnostics
	for _, k := range keys {
		v, ok := resolved[k].(string)
		if !ok || v == "" {
			continue
		}
		pos, path := p.paramWhere(target, stage, k, sets)
		i := strings.Index(v, "${")
		if i < 0 {
			if _, err := os.Stat(p.localPath(v)); err != nil {
				ds = append(ds, diag.Errorf(pos, path, "%s %s: %s", k, v, statReason(err)).
					WithFix("check the path: relative paths are relative to the project root (the working directory, or -C DIR)"))
			}
			continue
		}
		dir := filepath.Dir(v[:i] + "x")
		if dir == "." || dir == string(filepath.Separator) {
			continue
		}
		if _, err := os.Stat(p.localPath(dir)); err != nil {
			d := diag.Errorf(pos, path, "%s %s is known only at run time; its directory %s %s", k, v, dir, statReason(err)).
				WithFix("create the directory, or check the path (relative to the project root)")
			d.Severity = diag.Warning
			ds = append(ds, d)
		}
	}
	return ds
}

// paramWhere returns the position and field path of a stage parameter on
// a target: --set, the target's override, or the stage.
func (p *Pipeline) paramWhere(target, stage, key string, sets map[string]any) (diag.Pos, string) {
	st := p.Stages[stage]
	if hasKey(sets, key) {
		return diag.Pos{}, fmt.Sprintf("--set %s.%s", stage, key)
	}
	if t := p.Targets[target]; t != nil {
		if o := t.Stages[stage]; o != nil && hasKey(o.Params, key) {
			return o.ParamPos[key], o.Path + ".params." + key
		}
	}
	if pos, ok := st.ParamPos[key]; ok {
		return pos, st.Path + ".params." + key
	}
	return st.Pos, st.Path + ".params." + key
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

// checkTargetInputs adds CheckInputs' diagnostics of a stage on a target
// when Options.CheckInputs is set (validate).
func (l *loader) checkTargetInputs(p *Pipeline, t *Target, st *Stage) {
	if !l.opts.CheckInputs {
		return
	}
	resolved, ds := p.resolveParams(l.schema, t.Name, st.Name, nil)
	if ds.HasErrors() {
		return
	}
	l.diags = append(l.diags, p.checkInputs(l.schema, t.Name, st.Name, resolved, nil)...)
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
