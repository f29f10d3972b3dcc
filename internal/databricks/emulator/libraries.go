package emulator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/service/compute"
)

// Libraries: a task installs its cluster libraries (libraries: whl) or its
// serverless environment's dependencies (wheel paths) for real: each wheel
// is pip-installed (--no-deps --no-index) into a directory of its own,
// keyed by the wheel's content and shared by the tasks that install it,
// which goes on the notebook's PYTHONPATH after the notebook's folder (as
// site-packages follows it on Databricks). PyPI requirements are not
// fetched: the emulator's Python must already have the pinned versions
// (checkPins).

// libInstalls makes concurrent tasks share one install of a wheel.
type libInstalls struct {
	mu   sync.Mutex
	done map[string]*libInstall
	pins map[string]*pinCheck
}

type libInstall struct {
	once sync.Once
	dir  string
	err  error
}

// taskWheels returns the wheel files (Volume or workspace paths) a task
// installs.
func (e *Emulator) taskWheels(r *run, libs []compute.Library, envKey string) []string {
	var out []string
	for _, l := range libs {
		if l.Whl != "" {
			out = append(out, l.Whl)
		}
	}
	if envKey != "" {
		for _, env := range r.envs {
			if env.EnvironmentKey != envKey || env.Spec == nil {
				continue
			}
			for _, d := range env.Spec.Dependencies {
				if strings.HasSuffix(d, ".whl") && (strings.HasPrefix(d, "/Volumes/") || strings.HasPrefix(d, "/Workspace/")) {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// installWheels installs a task's wheels and returns the directories to
// put on its PYTHONPATH.
func (e *Emulator) installWheels(ctx context.Context, wheels []string) ([]string, error) {
	var dirs []string
	for _, w := range wheels {
		local := e.toLocal(w)
		if local == w {
			return nil, fmt.Errorf("Library installation failed: %s is not a workspace or Volume path", w)
		}
		b, err := os.ReadFile(local)
		if err != nil {
			return nil, fmt.Errorf("Library installation failed for library due to user error for whl: %q. Error message: the file does not exist", w)
		}
		sum := sha256.Sum256(b)
		key := hex.EncodeToString(sum[:16])
		e.libs.mu.Lock()
		if e.libs.done == nil {
			e.libs.done = map[string]*libInstall{}
		}
		in, ok := e.libs.done[key]
		if !ok {
			in = &libInstall{dir: filepath.Join(e.opts.Dir, "libraries", key)}
			e.libs.done[key] = in
		}
		e.libs.mu.Unlock()
		in.once.Do(func() { in.err = e.pipInstall(local, in.dir) })
		if in.err != nil {
			return nil, fmt.Errorf("Library installation failed for whl %q: %v", w, in.err)
		}
		dirs = append(dirs, in.dir)
	}
	return dirs, nil
}

func (e *Emulator) pipInstall(wheel, dir string) error {
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	cmd := exec.CommandContext(e.ctx, e.opts.Python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
		"--disable-pip-version-check", "--quiet", "--target", tmp, wheel)
	cmd.Env = e.notebookEnv("", "", nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pip install: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, dir)
}

// pinChecks remembers, per pin set, whether the emulator's Python has
// those exact versions.
type pinCheck struct {
	once sync.Once
	err  error
}

// taskPins returns the PyPI requirements a task installs: cluster
// libraries, or its serverless environment's dependencies that are not
// wheel files.
func (e *Emulator) taskPins(r *run, libs []compute.Library, envKey string) []string {
	var out []string
	for _, l := range libs {
		if l.Pypi != nil {
			out = append(out, l.Pypi.Package)
		}
	}
	if envKey != "" {
		for _, env := range r.envs {
			if env.EnvironmentKey != envKey || env.Spec == nil {
				continue
			}
			for _, d := range env.Spec.Dependencies {
				if !strings.HasSuffix(d, ".whl") {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// checkPins stands in for installing PyPI requirements, which the emulator
// does not fetch: every exact pin (name==version) must be what its Python
// has, or the task fails as a library installation would.
func (e *Emulator) checkPins(pins []string) error {
	var exact []string
	for _, p := range pins {
		if name, version, ok := strings.Cut(p, "=="); ok && !strings.ContainsAny(name, "<>!~;[ ") && !strings.ContainsAny(version, ",; ") {
			exact = append(exact, name+"=="+version)
		}
	}
	if len(exact) == 0 {
		return nil
	}
	key := strings.Join(exact, "\n")
	e.libs.mu.Lock()
	if e.libs.pins == nil {
		e.libs.pins = map[string]*pinCheck{}
	}
	pc, ok := e.libs.pins[key]
	if !ok {
		pc = &pinCheck{}
		e.libs.pins[key] = pc
	}
	e.libs.mu.Unlock()
	pc.once.Do(func() {
		const script = `import importlib.metadata as m, sys
bad = []
for pin in sys.argv[1:]:
    name, want = pin.split("==", 1)
    try:
        have = m.version(name)
    except m.PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{pin} (the emulator's Python has {have or 'none'})")
print("; ".join(bad))`
		cmd := exec.CommandContext(e.ctx, e.opts.Python, append([]string{"-c", script}, exact...)...)
		cmd.Env = e.notebookEnv("", "", nil)
		out, err := cmd.Output()
		switch {
		case err != nil:
			pc.err = fmt.Errorf("Library installation failed: cannot check the PyPI libraries: %v", err)
		case strings.TrimSpace(string(out)) != "":
			pc.err = fmt.Errorf("Library installation failed for pypi: %s", strings.TrimSpace(string(out)))
		}
	})
	return pc.err
}
