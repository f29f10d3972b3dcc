package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/pipectl/pipectl/internal/atomicfile"
	"github.com/pipectl/pipectl/internal/inspect"
)

//go:embed files
var own embed.FS

// ErrNotEmpty is returned when the directory has files and Force is off.
var ErrNotEmpty = errors.New("directory is not empty")

// Options say what to write.
type Options struct {
	// Force writes into a non-empty directory, replacing files of the same
	// names.
	Force bool
	// Data, when set, are the data stage parameters (from inspect) that
	// specs/common.cue's _data gets instead of the sample's.
	Data []inspect.Param
}

// dataSpec is the spec file that defines the data stage's parameters.
const dataSpec = "specs/common.cue"

// Write writes the project in template (the repository's files) and this
// package's README and .gitignore into dir, creating it, and returns the
// files written, slash-separated and sorted.
func Write(dir string, template fs.FS, opts Options) ([]string, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !opts.Force {
		return nil, fmt.Errorf("%w (%d entries); use --force to write into it anyway", ErrNotEmpty, len(entries))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	files := map[string][]byte{}
	err := fs.WalkDir(template, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(template, p)
		files[p] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	for name, dst := range map[string]string{"files/README.md": "README.md", "files/gitignore": ".gitignore"} {
		b, err := own.ReadFile(name)
		if err != nil {
			return nil, err
		}
		files[dst] = b
	}
	if len(opts.Data) > 0 {
		spec, ok := files[dataSpec]
		if !ok {
			return nil, fmt.Errorf("the template has no %s", dataSpec)
		}
		if files[dataSpec], err = setDataParams(spec, opts.Data); err != nil {
			return nil, fmt.Errorf("%s: %v", dataSpec, err)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFileNoSync(dst, files[name], 0o644); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// setDataParams sets the data stage's parameters in common.cue: data_name
// through _data_name (the other pipelines share it), the others in _data's
// params, where a field of the same name is replaced.
func setDataParams(src []byte, params []inspect.Param) ([]byte, error) {
	f, err := parser.ParseFile(dataSpec, src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var dataParams *ast.StructLit
	var dataName *ast.Field
	for _, decl := range f.Decls {
		field, ok := decl.(*ast.Field)
		if !ok {
			continue
		}
		switch labelName(field) {
		case "_data_name":
			dataName = field
		case "_data":
			if st, ok := field.Value.(*ast.StructLit); ok {
				for _, e := range st.Elts {
					if pf, ok := e.(*ast.Field); ok && labelName(pf) == "params" {
						dataParams, _ = pf.Value.(*ast.StructLit)
					}
				}
			}
		}
	}
	if dataParams == nil || dataName == nil {
		return nil, errors.New("no _data_name or _data: params: {...} to set the data parameters in")
	}
	for _, p := range params {
		value := ast.NewString(p.Value)
		if p.Name == "data_name" {
			dataName.Value = value
			continue
		}
		replaced := false
		for _, e := range dataParams.Elts {
			if pf, ok := e.(*ast.Field); ok && labelName(pf) == p.Name {
				pf.Value, replaced = value, true
			}
		}
		if !replaced {
			nf := &ast.Field{Label: ast.NewIdent(p.Name), Value: value}
			ast.SetRelPos(nf, token.Newline)
			dataParams.Elts = append(dataParams.Elts, nf)
		}
	}
	return format.Node(f)
}

func labelName(f *ast.Field) string {
	name, _, _ := ast.LabelName(f.Label)
	return name
}

// Rel is how a spec in the project at dir names file: relative to dir when
// inside it, else absolute.
func Rel(dir, file string) string {
	if rel, err := filepath.Rel(dir, file); err == nil && filepath.IsLocal(rel) {
		return path.Clean(filepath.ToSlash(rel))
	}
	return file
}
