package pyenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/pipectl/pipectl/internal/atomicfile"
	"github.com/pipectl/pipectl/internal/proc"
)

// DefaultPython is the interpreter used when Options.Python is empty.
const DefaultPython = "python3"

// markerName is the file written last into a complete venv.
const markerName = ".pipectl-ready"

// tailLines is how much of pip's output an error shows.
const tailLines = 40

// ErrNoPython is returned (wrapped) when no usable interpreter is found.
var ErrNoPython = errors.New("no usable Python interpreter")

// Options says which venv Ensure returns and how it reports progress.
type Options struct {
	// Python is the interpreter to build the venv from: a path, or a name
	// looked up on PATH. Empty means DefaultPython. (pipectl passes
	// $PIPECTL_PYTHON.)
	Python string
	// Requirements is the requirements file to install.
	Requirements string
	// Dir holds the venvs: pipectl's state directory.
	Dir string
	// MinVersion is the oldest acceptable Python as {major, minor}; zero
	// accepts any.
	MinVersion [2]int
	// Progress receives one line per step, and pip's output, while a venv
	// is created or awaited. Calls are serialised. Nil discards them.
	Progress func(line string)
	// Env is the environment of python and pip; nil means this process's.
	Env []string
}

// Env is a ready virtualenv.
type Env struct {
	// Dir is the venv's directory; Python its interpreter.
	Dir    string
	Python string
	// Key identifies the venv's inputs (requirements and interpreter).
	Key         string
	Interpreter Interpreter
	// Created says this call built the venv.
	Created bool
}

// Interpreter is a base Python a venv is built from.
type Interpreter struct {
	// Path is the interpreter as found (maybe a shim); Executable is its
	// real path.
	Path           string `json:"-"`
	Executable     string `json:"executable"`
	Implementation string `json:"implementation"`
	Version        string `json:"version"`
	Machine        string `json:"machine"`
	HasVenv        bool   `json:"venv"`
}

// marker is the content of markerName.
type marker struct {
	Key          string    `json:"key"`
	Python       string    `json:"python"`
	Version      string    `json:"version"`
	Requirements string    `json:"requirements"`
	Created      time.Time `json:"created"`
}

// probeScript prints what Ensure needs to know about an interpreter.
const probeScript = `import json, os, platform, sys
try:
    import ensurepip, venv
    ok = True
except ImportError:
    ok = False
print(json.dumps({"executable": os.path.realpath(sys.executable), "implementation": sys.implementation.name,
    "version": platform.python_version(), "machine": platform.machine(), "venv": ok}))
`

// Ensure returns the venv for opts, creating it when it does not exist or
// is incomplete.
func Ensure(ctx context.Context, opts Options) (*Env, error) {
	var mu sync.Mutex
	progress := func(line string) {
		if opts.Progress != nil {
			mu.Lock()
			defer mu.Unlock()
			opts.Progress(line)
		}
	}
	reqs, err := readRequirements(opts.Requirements)
	if err != nil {
		return nil, err
	}
	interp, err := Probe(ctx, opts.Python, opts.Env)
	if err != nil {
		return nil, err
	}
	if err := checkInterpreter(interp, opts.MinVersion); err != nil {
		return nil, err
	}
	key := venvKey(reqs, interp)
	env := &Env{
		Dir:         venvDir(opts.Dir, key),
		Key:         key,
		Interpreter: interp,
	}
	env.Python = venvPython(env.Dir)
	if ready(env) {
		return env, nil
	}

	// Owner-only, like the rest of pipectl's state directory.
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	lock := flock.New(env.Dir + ".lock")
	locked, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Path(), err)
	}
	if !locked {
		progress(fmt.Sprintf("waiting for another pipectl process to finish creating %s", env.Dir))
		if _, err := lock.TryLockContext(ctx, 200*time.Millisecond); err != nil {
			return nil, fmt.Errorf("wait for %s: %w", lock.Path(), err)
		}
	}
	defer lock.Unlock()
	if ready(env) {
		return env, nil
	}
	if err := create(ctx, env, opts, progress); err != nil {
		// Leave nothing half-built behind; a crash before this line is
		// caught by the missing marker instead.
		os.RemoveAll(env.Dir)
		return nil, err
	}
	env.Created = true
	return env, nil
}

// DirFor returns the directory of the venv Ensure would return for opts,
// without creating it; it probes the interpreter. pipectl gc keeps it and
// prunes the other venvs.
func DirFor(ctx context.Context, opts Options) (string, error) {
	reqs, err := readRequirements(opts.Requirements)
	if err != nil {
		return "", err
	}
	interp, err := Probe(ctx, opts.Python, opts.Env)
	if err != nil {
		return "", err
	}
	return venvDir(opts.Dir, venvKey(reqs, interp)), nil
}

// readRequirements returns the requirements file's bytes followed by those
// of the files it includes with "-r FILE" (relative to the including file,
// recursively): the venv's key then changes when an included file does.
// A file without includes keys as before.
func readRequirements(path string) ([]byte, error) {
	var out []byte
	seen := map[string]bool{}
	var read func(p string) error
	read = func(p string) error {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if seen[abs] {
			return nil
		}
		seen[abs] = true
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("requirements file: %w", err)
		}
		out = append(out, b...)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && (f[0] == "-r" || f[0] == "--requirement") {
				inc := f[1]
				if !filepath.IsAbs(inc) {
					inc = filepath.Join(filepath.Dir(p), inc)
				}
				out = append(out, 0)
				if err := read(inc); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := read(path); err != nil {
		return nil, err
	}
	return out, nil
}

// venvDir is the directory of the venv with key.
func venvDir(dir, key string) string { return filepath.Join(dir, "venv-"+key[:16]) }

// Probe runs python (a path, or a name on PATH; empty means
// DefaultPython) and describes it.
func Probe(ctx context.Context, python string, environ []string) (Interpreter, error) {
	if python == "" {
		python = DefaultPython
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return Interpreter{}, fmt.Errorf("%w: %s not found (%v); install Python 3 or set PIPECTL_PYTHON to an interpreter's path", ErrNoPython, python, errors.Unwrap(err))
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-S", "-c", probeScript)
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Interpreter{}, ctx.Err()
		}
		return Interpreter{}, fmt.Errorf("%w: %s failed to start (%v): %s; fix the interpreter or set PIPECTL_PYTHON to another", ErrNoPython, path, err, lastLine(stderr.String()))
	}
	var in Interpreter
	if err := json.Unmarshal(stdout.Bytes(), &in); err != nil || in.Executable == "" {
		return Interpreter{}, fmt.Errorf("%w: %s is not a Python 3 interpreter (it printed %q); set PIPECTL_PYTHON to one", ErrNoPython, path, lastLine(stdout.String()+stderr.String()))
	}
	in.Path = path
	return in, nil
}

func checkInterpreter(in Interpreter, min [2]int) error {
	major, minor := parseVersion(in.Version)
	if major < min[0] || major == min[0] && minor < min[1] || major != 3 {
		want := "3"
		if min[0] == 3 {
			want = fmt.Sprintf("3.%d or later", min[1])
		}
		return fmt.Errorf("%w: %s is Python %s; pipectl needs Python %s: install it or set PIPECTL_PYTHON to its path", ErrNoPython, in.Path, in.Version, want)
	}
	if !in.HasVenv {
		return fmt.Errorf("%w: %s (Python %s) lacks the venv and ensurepip modules; on Debian or Ubuntu install python3-venv (or python%d.%d-venv), or set PIPECTL_PYTHON to another interpreter", ErrNoPython, in.Path, in.Version, major, minor)
	}
	return nil
}

func parseVersion(v string) (major, minor int) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ = strconv.Atoi(parts[0])
	minor, _ = strconv.Atoi(parts[1])
	return major, minor
}

// venvPython is the interpreter of the venv at dir.
func venvPython(dir string) string {
	if runtime.GOOS == "windows" {
		return filepath.Join(dir, "Scripts", "python.exe")
	}
	return filepath.Join(dir, "bin", "python")
}

// venvKey hashes what a venv depends on.
func venvKey(reqs []byte, in Interpreter) string {
	h := sha256.New()
	fmt.Fprintf(h, "pipectl venv v1\x00%s\x00%s\x00%s\x00%s\x00", in.Implementation, in.Version, in.Executable, in.Machine)
	h.Write(reqs)
	return hex.EncodeToString(h.Sum(nil))
}

// ready reports whether env is complete: its marker names its key and its
// interpreter still exists (a removed base Python breaks a venv).
func ready(env *Env) bool {
	b, err := os.ReadFile(filepath.Join(env.Dir, markerName))
	if err != nil {
		return false
	}
	var m marker
	if json.Unmarshal(b, &m) != nil || m.Key != env.Key {
		return false
	}
	_, err = os.Stat(env.Python)
	return err == nil
}

func create(ctx context.Context, env *Env, opts Options, progress func(string)) error {
	if _, err := os.Stat(env.Dir); err == nil {
		progress(fmt.Sprintf("removing incomplete virtualenv %s (a previous creation did not finish)", env.Dir))
		if err := os.RemoveAll(env.Dir); err != nil {
			return err
		}
	}
	started := time.Now()
	progress(fmt.Sprintf("creating virtualenv %s with Python %s (%s)", env.Dir, env.Interpreter.Version, env.Interpreter.Executable))
	if err := step(ctx, env.Interpreter.Executable, env.Interpreter.Executable, []string{"-m", "venv", env.Dir}, opts, progress,
		"python -m venv "+env.Dir); err != nil {
		return err
	}
	progress(fmt.Sprintf("installing %s (pip install -r)", opts.Requirements))
	if err := step(ctx, env.Interpreter.Executable, env.Python, []string{"-m", "pip", "install", "--disable-pip-version-check", "--no-input",
		"--progress-bar", "off", "-r", opts.Requirements}, opts, progress,
		"pip install -r "+opts.Requirements); err != nil {
		return err
	}
	m := marker{Key: env.Key, Python: env.Interpreter.Executable, Version: env.Interpreter.Version,
		Requirements: opts.Requirements, Created: time.Now().UTC()}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(env.Dir, markerName), append(b, '\n'), 0o644); err != nil {
		return err
	}
	progress(fmt.Sprintf("virtualenv ready in %s", time.Since(started).Round(100*time.Millisecond)))
	return nil
}

// StepError is a failed step of venv creation, with the end of its output.
type StepError struct {
	Step   string
	Status proc.Status
	Tail   []string
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed (%s)", e.Step, e.Status)
	if len(e.Tail) > 0 {
		b.WriteString(":\n  ")
		b.WriteString(strings.Join(e.Tail, "\n  "))
	}
	b.WriteString("\nfix the problem above (a requirement that does not exist, a network or index problem: see PIP_INDEX_URL) and run again; the incomplete virtualenv was removed")
	return b.String()
}

// step runs one command of venv creation under the parent-death guard
// (run by the base interpreter), feeding its output to progress.
func step(ctx context.Context, guard, path string, args []string, opts Options, progress func(string), name string) error {
	var mu sync.Mutex
	var tail []string
	sink := func(line string) {
		progress(line)
		mu.Lock()
		defer mu.Unlock()
		tail = append(tail, line)
		if len(tail) > tailLines {
			tail = tail[len(tail)-tailLines:]
		}
	}
	st, err := proc.Run(ctx, proc.Cmd{Path: path, Args: args, Env: opts.Env, Guard: guard, Stdout: sink, Stderr: sink})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", name, ctx.Err())
	}
	if !st.Success() {
		return &StepError{Step: name, Status: st, Tail: tail}
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
