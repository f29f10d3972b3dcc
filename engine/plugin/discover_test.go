package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiscover(t *testing.T) {
	type row struct {
		Name, Path string
		Origin     Origin
		Overrides  bool
		Problem    Problem
		Pinned     bool
	}
	write := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+path), mode); err != nil {
			t.Fatal(err)
		}
	}
	sumLine := func(path string) string {
		b, _ := os.ReadFile(path)
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:]) + "  " + filepath.Base(path) + "\n"
	}
	tests := map[string]struct {
		files map[string]os.FileMode // relative to a temp dir: project/, home/, bin1/, bin2/
		extra func(t *testing.T, dir string)
		path  []string // PATH entries, relative to the temp dir unless absolute-looking markers
		want  []row
	}{
		"discovery order: project, user, PATH": {
			files: map[string]os.FileMode{
				"project/.pipectl/plugins/pipectl-executor-a": 0o755,
				"home/.pipectl/plugins/pipectl-executor-b":    0o755,
				"bin1/pipectl-executor-c":                     0o755,
				"bin1/unrelated":                              0o755,
			},
			path: []string{"bin1"},
			want: []row{
				{Name: "a", Path: "project/.pipectl/plugins/pipectl-executor-a", Origin: OriginProject},
				{Name: "b", Path: "home/.pipectl/plugins/pipectl-executor-b", Origin: OriginUser},
				{Name: "c", Path: "bin1/pipectl-executor-c", Origin: OriginPath},
			},
		},
		"duplicate: the first in search order wins": {
			files: map[string]os.FileMode{
				"project/.pipectl/plugins/pipectl-executor-a": 0o755,
				"home/.pipectl/plugins/pipectl-executor-a":    0o755,
				"bin1/pipectl-executor-a":                     0o755,
			},
			path: []string{"bin1"},
			want: []row{
				{Name: "a", Path: "project/.pipectl/plugins/pipectl-executor-a", Origin: OriginProject},
				{Name: "a", Path: "home/.pipectl/plugins/pipectl-executor-a", Origin: OriginUser, Problem: ProblemDuplicate},
				{Name: "a", Path: "bin1/pipectl-executor-a", Origin: OriginPath, Problem: ProblemDuplicate},
			},
		},
		"not executable does not hide a later one": {
			files: map[string]os.FileMode{
				"bin1/pipectl-executor-a": 0o644,
				"bin2/pipectl-executor-a": 0o755,
			},
			path: []string{"bin1", "bin2"},
			want: []row{
				{Name: "a", Path: "bin1/pipectl-executor-a", Origin: OriginPath, Problem: ProblemNotExecutable},
				{Name: "a", Path: "bin2/pipectl-executor-a", Origin: OriginPath},
			},
		},
		"invalid names": {
			files: map[string]os.FileMode{
				"bin1/pipectl-executor-Shell": 0o755,
				"bin1/pipectl-executor-x.sh":  0o755,
				"bin1/pipectl-executor-":      0o755,
			},
			path: []string{"bin1"},
			want: []row{
				{Name: "", Path: "bin1/pipectl-executor-", Origin: OriginPath, Problem: ProblemInvalidName},
				{Name: "Shell", Path: "bin1/pipectl-executor-Shell", Origin: OriginPath, Problem: ProblemInvalidName},
				{Name: "x.sh", Path: "bin1/pipectl-executor-x.sh", Origin: OriginPath, Problem: ProblemInvalidName},
			},
		},
		"a built-in's name: overrides from a plugin dir, ignored on PATH": {
			files: map[string]os.FileMode{
				"home/.pipectl/plugins/pipectl-executor-local": 0o755,
				"bin1/pipectl-executor-noop":                   0o755,
			},
			path: []string{"bin1"},
			want: []row{
				{Name: "local", Path: "home/.pipectl/plugins/pipectl-executor-local", Origin: OriginUser, Overrides: true},
				{Name: "noop", Path: "bin1/pipectl-executor-noop", Origin: OriginPath, Problem: ProblemShadowsBuiltin},
			},
		},
		"relative and empty PATH entries are skipped": {
			files: map[string]os.FileMode{"bin1/pipectl-executor-a": 0o755},
			path:  []string{"REL:bin1", "", "missing"},
			want:  nil,
		},
		"SHA256SUMS pins a directory": {
			files: map[string]os.FileMode{
				"project/.pipectl/plugins/pipectl-executor-a": 0o755,
				"project/.pipectl/plugins/pipectl-executor-b": 0o755,
			},
			extra: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "project/.pipectl/plugins")
				write(t, filepath.Join(p, ChecksumsFile), 0o644)
				if err := os.WriteFile(filepath.Join(p, ChecksumsFile), []byte(sumLine(filepath.Join(p, "pipectl-executor-a"))), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []row{
				{Name: "a", Path: "project/.pipectl/plugins/pipectl-executor-a", Origin: OriginProject, Pinned: true},
				{Name: "b", Path: "project/.pipectl/plugins/pipectl-executor-b", Origin: OriginProject, Problem: ProblemNotListedInSums},
			},
		},
		"a malformed SHA256SUMS refuses its directory": {
			files: map[string]os.FileMode{"project/.pipectl/plugins/pipectl-executor-a": 0o755},
			extra: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "project/.pipectl/plugins", ChecksumsFile), []byte("nonsense\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []row{{Name: "a", Path: "project/.pipectl/plugins/pipectl-executor-a", Origin: OriginProject, Problem: ProblemChecksumsFile}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, mode := range tc.files {
				write(t, filepath.Join(dir, f), mode)
			}
			if tc.extra != nil {
				tc.extra(t, dir)
			}
			var path []string
			for _, p := range tc.path {
				switch {
				case p == "":
					path = append(path, "")
				case strings.HasPrefix(p, "REL:"):
					path = append(path, strings.TrimPrefix(p, "REL:"))
				default:
					path = append(path, filepath.Join(dir, p))
				}
			}
			t.Chdir(dir) // so that a relative PATH entry would resolve, were it used
			got := Discover(DiscoverOptions{
				ProjectRoot: filepath.Join(dir, "project"), Home: filepath.Join(dir, "home"),
				PATH: strings.Join(path, string(os.PathListSeparator)), Builtins: []string{"local", "noop"},
			})
			var rows []row
			for _, c := range got {
				rel, _ := filepath.Rel(dir, c.Path)
				rows = append(rows, row{Name: c.Name, Path: rel, Origin: c.Origin, Overrides: c.Overrides, Problem: c.Problem, Pinned: c.Checksum != nil})
				if c.Problem != "" && c.Reason == "" {
					t.Errorf("%s is ignored without a reason", rel)
				}
			}
			if diff := cmp.Diff(tc.want, rows); diff != "" {
				t.Errorf("wrong candidates (-want +got)\n%s", diff)
			}
		})
	}
}

func TestPinnedChecksumIsEnforcedAtStart(t *testing.T) {
	exe := testExe(t)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	cfg := testConfig(t)
	cfg.Checksum = sum[:]
	info, err := Inspect(context.Background(), cfg)
	if err != nil || info.Name != "test" {
		t.Fatalf("a binary matching its pin: %+v, %v", info, err)
	}
	assertNoChildren(t)
}

func TestPluginEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "HOME=/h", "LC_ALL=C", "DATABRICKS_TOKEN=dapi", "AWS_SECRET_ACCESS_KEY=x", "MY_TOKEN=t", "BROKEN"}
	got := PluginEnv(environ, []string{"MY_TOKEN"})
	want := []string{"PATH=/bin", "HOME=/h", "LC_ALL=C", "MY_TOKEN=t"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wrong environment\n%s", diff)
	}
	ctx := WithPassEnv(context.Background(), []string{"A"})
	if diff := cmp.Diff([]string{"A"}, PassEnv(ctx)); diff != "" {
		t.Error(diff)
	}
	if PassEnv(context.Background()) != nil {
		t.Error("no pass_env in a bare context")
	}
}
