package local

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/pipectl/pipectl/internal/pyenv"
)

// UIOptions configures ServeUI.
type UIOptions struct {
	// ProjectRoot is the project; StateDir its .pipectl directory (empty
	// means <ProjectRoot>/.pipectl).
	ProjectRoot string
	StateDir    string
	// Python and Environ are as in Options.
	Python  string
	Environ []string
	// Port is the port on 127.0.0.1; 0 means DefaultUIPort.
	Port int
	// Progress receives the venv's creation progress, if it must be built.
	Progress func(line string)
	// Ready is called with the UI's URL once it answers.
	Ready func(url string)
}

// ServeUI serves the MLflow UI on the local store until ctx ends or the
// server stops by itself (an error).
func ServeUI(ctx context.Context, o UIOptions) error {
	if o.Port == 0 {
		o.Port = DefaultUIPort
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.ProjectRoot, ".pipectl")
	}
	env, err := EnsureVenv(ctx, VenvOptions{ProjectRoot: o.ProjectRoot, StateDir: o.StateDir, Python: o.Python,
		Environ: o.Environ, Progress: o.Progress})
	if err != nil {
		return err
	}
	s := startServer(NewStore(o.StateDir), env.Python, o.Environ, DefaultServerTimeout, o.Port)
	defer s.Close()
	url, err := s.Wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if o.Ready != nil {
		o.Ready(url)
	}
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil
	case <-p.Exited():
		st, _ := p.Wait()
		return fmt.Errorf("the MLflow UI server stopped (%s):\n%s", st, s.logs.tail(30))
	}
}

// VenvOptions locate the project's managed virtualenv.
type VenvOptions struct {
	ProjectRoot string
	// StateDir holds the venvs; empty means <ProjectRoot>/.pipectl.
	StateDir string
	// Python is the interpreter to build from ($PIPECTL_PYTHON); empty
	// means python3 on PATH.
	Python   string
	Environ  []string
	Progress func(string)
	// Spark selects the Spark engine's venv (SparkRequirements).
	Spark bool
}

func (o VenvOptions) requirements(dir string) string {
	if o.Spark {
		return filepath.Join(dir, SparkRequirements)
	}
	return filepath.Join(dir, "requirements.txt")
}

// EnsureVenv returns the virtualenv the local executor runs the project's
// notebooks in, building it when needed: the same venv a run uses, so that
// tools (tests, notebooks by hand) share it.
func EnsureVenv(ctx context.Context, o VenvOptions) (*pyenv.Env, error) {
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.ProjectRoot, ".pipectl")
	}
	dir := filepath.Join(o.ProjectRoot, PythonDir)
	if err := checkPythonDir(dir); err != nil {
		return nil, err
	}
	return pyenv.Ensure(ctx, pyenv.Options{Python: o.Python, Requirements: o.requirements(dir),
		Dir: o.StateDir, MinVersion: MinPython, Progress: o.Progress, Env: scrubEnv(o.Environ)})
}

// CurrentVenv returns the directory of the venv EnsureVenv would return,
// without building it (pipectl gc keeps it).
func CurrentVenv(ctx context.Context, o VenvOptions) (string, error) {
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.ProjectRoot, ".pipectl")
	}
	dir := filepath.Join(o.ProjectRoot, PythonDir)
	if err := checkPythonDir(dir); err != nil {
		return "", err
	}
	return pyenv.DirFor(ctx, pyenv.Options{Python: o.Python, Requirements: o.requirements(dir),
		Dir: o.StateDir, Env: scrubEnv(o.Environ)})
}
