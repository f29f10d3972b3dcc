package pyenv

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests build real venvs with the python3 on PATH (or $PIPECTL_PYTHON)
// and install a wheel they write themselves, so pip never needs a network.

func TestMain(m *testing.M) {
	// A second process asking for the same venv (TestEnsureAcrossProcesses).
	if dir := os.Getenv("PYENV_TEST_DIR"); dir != "" {
		env, err := Ensure(context.Background(), Options{Python: os.Getenv("PIPECTL_PYTHON"), Dir: dir, Requirements: os.Getenv("PYENV_TEST_REQS")})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(env.Created, env.Dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func python(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PIPECTL_PYTHON")
	if p == "" {
		p = DefaultPython
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Skipf("no %s: these tests build real virtualenvs", p)
	}
	return p
}

// writeWheel writes a pure-Python wheel of package tinypkg (VALUE = value)
// into dir and returns its path.
func writeWheel(t *testing.T, dir, value string) string {
	t.Helper()
	path := filepath.Join(dir, "tinypkg-1.0-py3-none-any.whl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	files := []struct{ name, body string }{
		{"tinypkg/__init__.py", "VALUE = " + value + "\n"},
		{"tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n"},
		{"tinypkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: pipectl-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, file := range files {
		w, err := zw.Create(file.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(file.body))
		sum := sha256.Sum256([]byte(file.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", file.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(file.body))
	}
	record.WriteString("tinypkg-1.0.dist-info/RECORD,,\n")
	w, err := zw.Create("tinypkg-1.0.dist-info/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeReqs(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func importValue(t *testing.T, env *Env) string {
	t.Helper()
	out, err := exec.Command(env.Python, "-c", "import tinypkg; print(tinypkg.VALUE)").CombinedOutput()
	if err != nil {
		t.Fatalf("import tinypkg in %s: %v\n%s", env.Dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestEnsureCreatesThenReuses(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, writeWheel(t, dir, "1")+"\n")
	state := filepath.Join(dir, "state")
	var rec recorder
	env, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs, MinVersion: [2]int{3, 8}, Progress: rec.add})
	if err != nil {
		t.Fatal(err)
	}
	if !env.Created {
		t.Error("first Ensure did not report creating the venv")
	}
	if filepath.Dir(env.Dir) != state || !strings.HasPrefix(filepath.Base(env.Dir), "venv-") {
		t.Errorf("venv at %s, want %s/venv-<key>", env.Dir, state)
	}
	for _, want := range []string{"creating virtualenv", "installing " + reqs, "tinypkg", "virtualenv ready"} {
		if !strings.Contains(rec.text(), want) {
			t.Errorf("progress lacks %q:\n%s", want, rec.text())
		}
	}
	if got := importValue(t, env); got != "1" {
		t.Errorf("tinypkg.VALUE = %s, want 1", got)
	}

	var again recorder
	env2, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs, Progress: again.add})
	if err != nil {
		t.Fatal(err)
	}
	if env2.Created || env2.Dir != env.Dir {
		t.Errorf("second Ensure: created %v at %s, want reuse of %s", env2.Created, env2.Dir, env.Dir)
	}
	if again.text() != "" {
		t.Errorf("reuse reported progress:\n%s", again.text())
	}

	// Other requirements make another venv; the first one stays.
	if err := os.WriteFile(reqs, []byte(writeWheel(t, dir, "1")+"\n# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env3, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs})
	if err != nil {
		t.Fatal(err)
	}
	if !env3.Created || env3.Dir == env.Dir {
		t.Errorf("changed requirements: created %v at %s, want a new venv beside %s", env3.Created, env3.Dir, env.Dir)
	}
}

func TestEnsureRebuildsIncompleteVenv(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, writeWheel(t, dir, "2")+"\n")
	state := filepath.Join(dir, "state")
	env, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(){
		// A crash between venv creation and the marker leaves no marker.
		"no marker": func() { os.Remove(filepath.Join(env.Dir, markerName)) },
		// A torn or foreign marker is not trusted.
		"bad marker": func() { os.WriteFile(filepath.Join(env.Dir, markerName), []byte("{\"key\": \"x"), 0o644) },
		// The base interpreter vanished (e.g. uninstalled).
		"no interpreter": func() { os.Remove(env.Python) },
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			breakIt()
			// Something the rebuild must remove: a half-installed package.
			os.WriteFile(filepath.Join(env.Dir, "half-installed"), nil, 0o644)
			var rec recorder
			env2, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs, Progress: rec.add})
			if err != nil {
				t.Fatal(err)
			}
			if !env2.Created || env2.Dir != env.Dir {
				t.Errorf("created %v at %s, want a rebuild of %s", env2.Created, env2.Dir, env.Dir)
			}
			if !strings.Contains(rec.text(), "removing incomplete virtualenv") {
				t.Errorf("progress does not say the venv was rebuilt:\n%s", rec.text())
			}
			if _, err := os.Stat(filepath.Join(env.Dir, "half-installed")); !errors.Is(err, os.ErrNotExist) {
				t.Error("the incomplete venv was not removed before rebuilding")
			}
			if got := importValue(t, env2); got != "2" {
				t.Errorf("tinypkg.VALUE = %s, want 2", got)
			}
		})
	}
}

func TestEnsureConcurrentCallersShareOneBuild(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, writeWheel(t, dir, "3")+"\n")
	state := filepath.Join(dir, "state")
	const n = 4
	envs := make([]*Env, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs[i], errs[i] = Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs})
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if envs[i].Dir != envs[0].Dir {
			t.Errorf("caller %d got %s, caller 0 %s", i, envs[i].Dir, envs[0].Dir)
		}
		if envs[i].Created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d callers built the venv, want exactly 1", created)
	}
	if got := importValue(t, envs[0]); got != "3" {
		t.Errorf("tinypkg.VALUE = %s, want 3", got)
	}
}

func TestEnsureAcrossProcesses(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, writeWheel(t, dir, "4")+"\n")
	state := filepath.Join(dir, "state")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	cmds := make([]*exec.Cmd, n)
	outs := make([]strings.Builder, n)
	for i := range n {
		cmds[i] = exec.Command(exe, "-test.run=^$")
		cmds[i].Env = append(os.Environ(), "PYENV_TEST_DIR="+state, "PYENV_TEST_REQS="+reqs, "PIPECTL_PYTHON="+py)
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	created := 0
	for i := range n {
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
		if strings.HasPrefix(outs[i].String(), "true ") {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d processes built the venv, want exactly 1:\n%s\n%s\n%s", created, outs[0].String(), outs[1].String(), outs[2].String())
	}
}

func TestEnsurePipFailure(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-1.0-py3-none-any.whl")
	reqs := writeReqs(t, dir, missing+"\n")
	state := filepath.Join(dir, "state")
	_, err := Ensure(context.Background(), Options{Python: py, Dir: state, Requirements: reqs})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a StepError", err)
	}
	msg := err.Error()
	for _, want := range []string{"pip install -r " + reqs + " failed (exit code 1)", "missing-1.0-py3-none-any.whl", "the incomplete virtualenv was removed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if left := venvDirs(state); len(left) > 0 {
		t.Errorf("failed creation left %v", left)
	}
}

func TestEnsureCancelled(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, writeWheel(t, dir, "5")+"\n")
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Ensure(ctx, Options{Python: py, Dir: state, Requirements: reqs, Progress: func(line string) {
		if strings.HasPrefix(line, "creating virtualenv") {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if left := venvDirs(state); len(left) > 0 {
		t.Errorf("cancelled creation left %v", left)
	}
}

// venvDirs lists the venv directories in state (not their lock files).
func venvDirs(state string) []string {
	var dirs []string
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "venv-") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

func TestInterpreterErrors(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	reqs := writeReqs(t, dir, "")
	tests := map[string]struct {
		opts Options
		want string
	}{
		"not on PATH":    {Options{Python: "no-such-python-pipectl"}, "no-such-python-pipectl not found"},
		"missing path":   {Options{Python: filepath.Join(dir, "python9")}, "set PIPECTL_PYTHON"},
		"not python":     {Options{Python: "/bin/true"}, "is not a Python 3 interpreter"},
		"too old":        {Options{Python: py, MinVersion: [2]int{3, 99}}, "pipectl needs Python 3.99 or later"},
		"no requirement": {Options{Python: py, Requirements: filepath.Join(dir, "nope.txt")}, "requirements file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Dir = filepath.Join(dir, "state")
			if tc.opts.Requirements == "" {
				tc.opts.Requirements = reqs
			}
			_, err := Ensure(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if name != "no requirement" && !errors.Is(err, ErrNoPython) {
				t.Errorf("error %v is not ErrNoPython", err)
			}
		})
	}
}

// A file that includes another with -r (requirements-spark.txt includes
// requirements.txt) keys its venv on both: editing the included file must
// not reuse a venv built from its old pins.
func TestIncludedRequirementsChangeTheKey(t *testing.T) {
	t.Parallel()
	py := python(t)
	dir := t.TempDir()
	base := writeReqs(t, dir, "tinypkg==1.0\n")
	outer := filepath.Join(dir, "requirements-extra.txt")
	if err := os.WriteFile(outer, []byte("-r requirements.txt\nother==2.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Python: py, Dir: filepath.Join(dir, "state"), Requirements: outer}
	before, err := DirFor(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base, []byte("tinypkg==1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := DirFor(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Errorf("editing the included requirements.txt kept the venv %s", before)
	}
	// A missing include is named.
	if err := os.Remove(base); err != nil {
		t.Fatal(err)
	}
	if _, err := DirFor(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "requirements.txt") {
		t.Errorf("missing include: err = %v, want one naming requirements.txt", err)
	}
}
