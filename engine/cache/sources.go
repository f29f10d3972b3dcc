package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Hasher hashes the files behind a stage. It remembers hashes by path,
// size and modification time, so a run that keys many stages reads each
// file once. It is safe for concurrent use.
type Hasher struct {
	// Root is the project root; every path it returns is relative to it.
	Root string

	mu   sync.Mutex
	memo map[string]fileSum
}

type fileSum struct {
	size int64
	mod  time.Time
	sum  string
}

// NewHasher returns a hasher for the project at root.
func NewHasher(root string) *Hasher { return &Hasher{Root: root, memo: map[string]fileSum{}} }

// Sources returns the notebooks and local packages behind notebook (a path
// relative to the project root).
//
// The set is defined by what Python would import from the notebook's
// directory D (the first entry of sys.path when a notebook runs, locally
// and on Databricks):
//
//   - the notebook, and every notebook it pulls in with "# MAGIC %run PATH"
//     (PATH relative to the including notebook, ".py" added when missing);
//   - for each top-level name N in an "import N[.x]" or "from N[.x] import"
//     statement of those files (at any indentation, so imports inside
//     functions count): the package directory D/N (every file in it,
//     recursively, except __pycache__, tests and test directories, hidden
//     entries and compiled *.pyc/*.pyo files) or the module D/N.py, when
//     one exists; names that resolve to neither are third-party or the
//     standard library, covered by the requirements file;
//   - transitively, the local packages imported by the .py files found.
//
// A change to any of these files changes the key; editing tests, caches or
// another notebook does not.
func (h *Hasher) Sources(notebook string) (notebooks map[string]string, packages map[string]map[string]string, err error) {
	notebooks = map[string]string{}
	packages = map[string]map[string]string{}
	base := filepath.Dir(filepath.Join(h.Root, filepath.FromSlash(notebook)))
	var queue []string
	addNotebook := func(abs string) error {
		rel, err := h.rel(abs)
		if err != nil {
			return err
		}
		if _, ok := notebooks[rel]; ok {
			return nil
		}
		sum, err := h.sum(abs)
		if err != nil {
			return err
		}
		notebooks[rel] = sum
		queue = append(queue, abs)
		return nil
	}
	if err := addNotebook(filepath.Join(h.Root, filepath.FromSlash(notebook))); err != nil {
		return nil, nil, err
	}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		content, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, err
		}
		mods, runs := scanPython(content)
		for _, r := range runs {
			p := filepath.Join(filepath.Dir(file), filepath.FromSlash(r))
			if filepath.Ext(p) != ".py" {
				p += ".py"
			}
			if _, err := os.Stat(p); err != nil {
				continue // a %run of something not in the repository
			}
			if err := addNotebook(p); err != nil {
				return nil, nil, err
			}
		}
		for _, m := range mods {
			if _, ok := packages[m]; ok {
				continue
			}
			files, err := h.packageFiles(base, m)
			if err != nil {
				return nil, nil, err
			}
			if files == nil {
				continue
			}
			packages[m] = files
			for rel := range files {
				if strings.HasSuffix(rel, ".py") {
					queue = append(queue, filepath.Join(h.Root, filepath.FromSlash(rel)))
				}
			}
		}
	}
	return notebooks, packages, nil
}

// packageFiles hashes local package or module name in dir, or returns nil
// when there is none.
func (h *Hasher) packageFiles(dir, name string) (map[string]string, error) {
	files := map[string]string{}
	pkg := filepath.Join(dir, name)
	if fi, err := os.Stat(pkg); err == nil && fi.IsDir() {
		err := filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			n := d.Name()
			if p != pkg && (strings.HasPrefix(n, ".") || (d.IsDir() && (n == "__pycache__" || n == "tests" || n == "test"))) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() || strings.HasSuffix(n, ".pyc") || strings.HasSuffix(n, ".pyo") {
				return nil
			}
			rel, err := h.rel(p)
			if err != nil {
				return err
			}
			sum, err := h.sum(p)
			if err != nil {
				return err
			}
			files[rel] = sum
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, nil
		}
		return files, nil
	}
	mod := pkg + ".py"
	if fi, err := os.Stat(mod); err == nil && fi.Mode().IsRegular() {
		rel, err := h.rel(mod)
		if err != nil {
			return nil, err
		}
		sum, err := h.sum(mod)
		if err != nil {
			return nil, err
		}
		files[rel] = sum
		return files, nil
	}
	return nil, nil
}

// Requirements finds the nearest requirements.txt from notebook's
// directory up to the project root and returns its path and SHA-256, or
// empty strings.
func (h *Hasher) Requirements(notebook string) (path, sum string, err error) {
	root := filepath.Clean(h.Root)
	dir := filepath.Dir(filepath.Join(root, filepath.FromSlash(notebook)))
	for {
		p := filepath.Join(dir, "requirements.txt")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			rel, err := h.rel(p)
			if err != nil {
				return "", "", err
			}
			s, err := h.sum(p)
			return rel, s, err
		}
		if dir == root || !strings.HasPrefix(dir, root) {
			return "", "", nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", nil
		}
		dir = parent
	}
}

func (h *Hasher) rel(abs string) (string, error) {
	rel, err := filepath.Rel(h.Root, abs)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

// sum returns the SHA-256 of a file's content.
func (h *Hasher) sum(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cache key: %s does not exist", path)
		}
		return "", err
	}
	h.mu.Lock()
	if h.memo == nil {
		h.memo = map[string]fileSum{}
	}
	m, ok := h.memo[path]
	h.mu.Unlock()
	if ok && m.size == fi.Size() && m.mod.Equal(fi.ModTime()) {
		return m.sum, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	sum := hex.EncodeToString(s[:])
	h.mu.Lock()
	h.memo[path] = fileSum{size: fi.Size(), mod: fi.ModTime(), sum: sum}
	h.mu.Unlock()
	return sum, nil
}

var (
	importRE = regexp.MustCompile(`^\s*import\s+(.+)$`)
	fromRE   = regexp.MustCompile(`^\s*from\s+([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_.]*)?\s+import\b`)
	runRE    = regexp.MustCompile(`^#\s*MAGIC\s+%run\s+(\S+)`)
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
)

// scanPython returns the top-level module names a Python file imports and
// the paths it %runs, in order of appearance, deduplicated.
func scanPython(content []byte) (modules, runs []string) {
	for raw := range bytes.Lines(content) {
		raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
		// Most lines import nothing: no string, no regular expressions for
		// them (scanning was a third of `pipectl plan`'s time).
		if !bytes.Contains(raw, []byte("import")) && !bytes.Contains(raw, []byte("%run")) {
			continue
		}
		line := string(raw)
		if m := runRE.FindStringSubmatch(line); m != nil {
			runs = appendNew(runs, strings.Trim(m[1], `"'`))
			continue
		}
		if m := fromRE.FindStringSubmatch(line); m != nil {
			modules = appendNew(modules, m[1])
			continue
		}
		if m := importRE.FindStringSubmatch(line); m != nil {
			stmt, _, _ := strings.Cut(m[1], "#")
			stmt, _, _ = strings.Cut(stmt, ";")
			for _, part := range strings.Split(stmt, ",") {
				if name := identRE.FindString(strings.TrimSpace(part)); name != "" {
					modules = appendNew(modules, name)
				}
			}
		}
	}
	return modules, runs
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
