package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a spec file. It must
// return diagnostics, never panic, and never accept a spec that has
// errors; every diagnostic has a summary and a position inside the file;
// and what it accepts is safe to run: names pass CheckName, notebooks stay
// in the project, and the resolved path segments of every stage on every
// target (data_name, data_version, output_name) pass CheckSegment. The
// seed corpus is the repository's specs and the base spec of the table
// tests. docs/RELIABILITY.md records the long runs.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("package p\npipelines: x: {}\n"))
	f.Add([]byte("package p\npipelines: x: stages: a: needs: [\"a\"]\n"))
	f.Add([]byte("pipelines: \"\\u0000\": {description: \"\"}"))
	f.Add([]byte(strings.Replace(base, `data_version: "v1"`, `data_version: "../v1"`, 1)))
	f.Add([]byte(strings.Replace(base, `targets: local: executor: "local"`,
		`targets: local: {executor: "local", stages: data: params: data_name: "/etc"}`, 1)))
	for _, name := range []string{"common.cue", "sentiment.cue"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "specs", name)); err == nil {
			f.Add(b)
		}
	}
	root := project(f, nil)
	schema, err := LoadSchema()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "fuzz.cue")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		proj, ds := Load([]string{path}, Options{Root: root})
		if proj == nil && !ds.HasErrors() {
			t.Fatal("no project and no error")
		}
		lines := bytes.Count(src, []byte("\n")) + 1
		for _, d := range ds {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
			if d.Pos.File == path && (d.Pos.Line < 0 || d.Pos.Line > lines) {
				t.Fatalf("diagnostic at line %d of a %d-line file: %+v", d.Pos.Line, lines, d)
			}
		}
		if ds.HasErrors() {
			return
		}
		for name, p := range proj.Pipelines {
			checkAccepted(t, schema, name, p)
		}
	})
}

// checkAccepted fails when an accepted pipeline could reach outside its
// roots on disk.
func checkAccepted(t *testing.T, schema *Schema, name string, p *Pipeline) {
	if why := CheckName(name); why != "" {
		t.Fatalf("accepted pipeline name %q: %s", name, why)
	}
	for tn := range p.Targets {
		if why := CheckName(tn); why != "" {
			t.Fatalf("accepted target name %q: %s", tn, why)
		}
	}
	for sn, st := range p.Stages {
		if why := CheckName(sn); why != "" {
			t.Fatalf("accepted stage name %q: %s", sn, why)
		}
		if st.Notebook != "" && !filepath.IsLocal(st.Notebook) {
			t.Fatalf("accepted notebook %q of stage %s leaves the project", st.Notebook, sn)
		}
		for tn := range p.Targets {
			params, ds := p.ResolveParams(schema, tn, sn, nil)
			if ds.HasErrors() {
				continue // plan reports these before anything runs
			}
			for _, key := range []string{"data_name", "data_version", "output_name"} {
				v, ok := params[key].(string)
				if !ok || strings.Contains(v, "${") {
					continue // references are checked by the notebooks at run time
				}
				if why := CheckSegment(v); why != "" {
					t.Fatalf("stage %s on %s: accepted %s %q: %s", sn, tn, key, v, why)
				}
			}
		}
	}
}

// FuzzSubstitute checks that substitution never panics, that text without
// "${" comes back unchanged, and that validation and run time agree: a
// value ParseRefs accepts (what pipectl validate checks) substitutes
// without error once every reference has a value, and one it refuses does
// not substitute. Values are inserted verbatim, never parsed again.
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"v1", "${stages.a.outputs.b}", "$${x}", "${run.date}-${", "}}${{",
		"${run.id}/${stages.data.outputs.data_version}", "$$${run.id}", "${stages.a.outputs.b"} {
		f.Add(s, "X")
	}
	f.Add("${stages.a.outputs.b}", "${run.id}")
	f.Fuzz(func(t *testing.T, s, value string) {
		out, err := Substitute(s, func(r Ref) (string, bool) { return value, true })
		if err == nil && !containsRef(s) && out != s {
			t.Fatalf("Substitute(%q) = %q without references", s, out)
		}
		refs, perr := ParseRefs(s)
		if (perr == nil) != (err == nil) {
			t.Fatalf("ParseRefs(%q) error %v but Substitute error %v", s, perr, err)
		}
		if err != nil {
			return
		}
		// Values are inserted verbatim, once per reference.
		if value != "" && strings.Count(out, value) < len(refs) {
			t.Fatalf("Substitute(%q, %q) = %q: fewer than %d copies of the value", s, value, out, len(refs))
		}
	})
}

func containsRef(s string) bool { return indexOf(s, "${") >= 0 }
