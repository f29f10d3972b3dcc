package cache

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestScanPython(t *testing.T) {
	src := `# Databricks notebook source
# MAGIC %run ./helpers
# MAGIC %run "../shared/setup"
import json, os.path as p
import sentiment.stages  # comment, not_a_module
from sentiment.context import Context
from . import sibling
from typing import (
    Any,
)
def f():
    import lazy_pkg
    from  other_pkg.sub  import thing
x = "import not_really"
`
	mods, runs := scanPython([]byte(src))
	if diff := cmp.Diff([]string{"json", "os", "sentiment", "typing", "lazy_pkg", "other_pkg"}, mods); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"./helpers", "../shared/setup"}, runs); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}
}

func project(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSourcesFollowImportsAndRuns(t *testing.T) {
	root := project(t, map[string]string{
		"notebooks/train.py":                                "# MAGIC %run ./common\nimport sentiment\n",
		"notebooks/common.py":                               "import helpers\n",
		"notebooks/helpers.py":                              "from sentiment import x\n",
		"notebooks/sentiment/__init__.py":                   "",
		"notebooks/sentiment/models.py":                     "from vendored import y\n",
		"notebooks/sentiment/data/words.txt":                "good bad\n",
		"notebooks/sentiment/tests/test_m.py":               "import pytest\n",
		"notebooks/sentiment/__pycache__/m.cpython-312.pyc": "x",
		"notebooks/sentiment/.hidden":                       "x",
		"notebooks/vendored/__init__.py":                    "",
		"notebooks/unused/__init__.py":                      "",
		"notebooks/requirements.txt":                        "pandas==3.1.1\n",
	})
	h := NewHasher(root)
	nbs, pkgs, err := h.Sources("notebooks/train.py")
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(keys(nbs)); !slices.Equal(got, []string{"notebooks/common.py", "notebooks/train.py"}) {
		t.Errorf("notebooks %v", got)
	}
	got := map[string][]string{}
	for p, files := range pkgs {
		got[p] = slices.Sorted(keys(files))
	}
	want := map[string][]string{
		"helpers":   {"notebooks/helpers.py"},
		"sentiment": {"notebooks/sentiment/__init__.py", "notebooks/sentiment/data/words.txt", "notebooks/sentiment/models.py"},
		"vendored":  {"notebooks/vendored/__init__.py"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	req, sum, err := h.Requirements("notebooks/train.py")
	if err != nil || req != "notebooks/requirements.txt" || len(sum) != 64 {
		t.Errorf("requirements %q %q %v", req, sum, err)
	}
}

func TestRequirementsSearchStopsAtTheRoot(t *testing.T) {
	outer := t.TempDir()
	os.WriteFile(filepath.Join(outer, "requirements.txt"), []byte("x\n"), 0o644)
	root := filepath.Join(outer, "proj")
	os.MkdirAll(filepath.Join(root, "nb"), 0o755)
	os.WriteFile(filepath.Join(root, "nb", "a.py"), nil, 0o644)
	req, _, err := NewHasher(root).Requirements("nb/a.py")
	if err != nil || req != "" {
		t.Errorf("found %q outside the project, %v", req, err)
	}
}

func TestHasherSeesChanges(t *testing.T) {
	root := project(t, map[string]string{"nb.py": "import m\n", "m.py": "A = 1\n"})
	h := NewHasher(root)
	_, p1, _ := h.Sources("nb.py")
	os.WriteFile(filepath.Join(root, "m.py"), []byte("A = 22\n"), 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(root, "m.py"), later, later)
	_, p2, _ := h.Sources("nb.py")
	if p1["m"]["m.py"] == p2["m"]["m.py"] {
		t.Error("a changed module kept its hash")
	}
}

func TestKeyAndDiff(t *testing.T) {
	base := Components{Version: KeyVersion, Stage: "train", Type: "train", Notebook: "nb.py",
		Notebooks: map[string]string{"nb.py": "1"},
		Packages:  map[string]map[string]string{"sentiment": {"s/a.py": "1", "s/b.py": "1"}},
		Params:    map[string]string{"C": "8", "gone": "x"}, Executor: "local", Config: `{"a":1}`,
		Requirements: "requirements.txt", RequirementsSHA: "1"}
	same := base
	if base.Key() != same.Key() || len(base.Key()) != 64 {
		t.Fatal("equal components, different keys")
	}
	cur := base
	cur.Notebooks = map[string]string{"nb.py": "2"}
	cur.Packages = map[string]map[string]string{"sentiment": {"s/a.py": "2", "s/c.py": "1"}, "extra": {"e.py": "1"}}
	cur.Params = map[string]string{"C": "4", "new": "a b"}
	cur.Config = `{"a":2}`
	cur.RequirementsSHA = "2"
	if cur.Key() == base.Key() {
		t.Fatal("different components, same key")
	}
	got := Diff(base, cur)
	want := []Change{
		{ReasonNotebook, "nb.py: modified"},
		{ReasonPackage, "extra: now imported"},
		{ReasonPackage, "s/a.py: modified"},
		{ReasonPackage, "s/b.py: removed"},
		{ReasonPackage, "s/c.py: added"},
		{ReasonParams, "C: 8 → 4"},
		{ReasonParams, "gone: removed (was x)"},
		{ReasonParams, `new: added ("a b")`},
		{ReasonConfig, `{"a":1} → {"a":2}`},
		{ReasonRequirements, "requirements.txt: modified"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff (-want +got):\n%s", diff)
	}
	if r := Reasons(got); !slices.Equal(r, []string{ReasonNotebook, ReasonPackage, ReasonParams, ReasonConfig, ReasonRequirements}) {
		t.Errorf("reasons %v", r)
	}
	if d := Diff(base, base); len(d) != 0 {
		t.Errorf("no change gives %v", d)
	}
}

func TestShortKeepsRunes(t *testing.T) {
	s := short(strings.Repeat("é", 100))
	if !strings.HasSuffix(s, "…") || strings.ContainsRune(s, '\uFFFD') || len([]rune(s)) != 80 {
		t.Errorf("short: %q", s)
	}
}

func TestStorePutGetLast(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	key := Components{Stage: "a"}.Key()
	if e, err := s.Get(key); e != nil || err != nil {
		t.Fatalf("empty store: %v %v", e, err)
	}
	e := &Entry{Key: key, Outputs: map[string]string{"x": "1"}, Pipeline: "p", Target: "local", Stage: "a", RunID: "r"}
	if err := s.Put(e); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(key)
	if err != nil || got.Outputs["x"] != "1" {
		t.Errorf("get: %+v %v", got, err)
	}
	if last, err := s.Last("p", "local", "a"); last != nil || err != nil {
		t.Errorf("last before SetLast: %+v %v", last, err)
	}
	if err := s.SetLast("p", "local", map[string]string{"a": key}); err != nil {
		t.Fatal(err)
	}
	other := Components{Stage: "b"}.Key()
	s.Put(&Entry{Key: other, Stage: "b"})
	if err := s.SetLast("p", "local", map[string]string{"b": other}); err != nil {
		t.Fatal(err)
	}
	last, err := s.Last("p", "local", "a")
	if err != nil || last == nil || last.Key != key {
		t.Errorf("last of a after setting b: %+v %v", last, err)
	}
	if err := s.SetLast("../x", "t", map[string]string{"a": key}); err == nil {
		t.Error("an unsafe pipeline name was accepted")
	}
	if _, err := s.Get("../../etc/passwd"); err == nil {
		t.Error("a path as key was accepted")
	}
	fi, _ := os.Stat(filepath.Join(s.Dir, "entries", key+".json"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("entry mode %v", fi.Mode().Perm())
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
