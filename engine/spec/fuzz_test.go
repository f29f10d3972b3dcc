package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a spec file: it must
// return diagnostics, never panic, and never accept a spec that has
// errors. The seed corpus is the repository's specs and the base spec of
// the table tests.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("package p\npipelines: x: {}\n"))
	f.Add([]byte("package p\npipelines: x: stages: a: needs: [\"a\"]\n"))
	f.Add([]byte("pipelines: \"\\u0000\": {description: \"\"}"))
	for _, name := range []string{"common.cue", "sentiment.cue"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "specs", name)); err == nil {
			f.Add(b)
		}
	}
	root := project(f, nil)
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
		for _, d := range ds {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %+v", d)
			}
		}
	})
}

// FuzzSubstitute checks that substitution never panics and that text
// without "${" comes back unchanged.
func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"v1", "${stages.a.outputs.b}", "$${x}", "${run.date}-${", "}}${{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Substitute(s, func(r Ref) (string, bool) { return "X", true })
		if err == nil && !containsRef(s) && out != s {
			t.Fatalf("Substitute(%q) = %q without references", s, out)
		}
	})
}

func containsRef(s string) bool { return indexOf(s, "${") >= 0 }
