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
// fetched: the emulator's Python must already have them.

// libInstalls makes concurrent tasks share one install of a wheel.
type libInstalls struct {
	mu   sync.Mutex
	done map[string]*libInstall
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
