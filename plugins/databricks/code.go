package databricks

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/workspace"
)

// notebookHeader starts every Databricks source-format Python notebook.
const notebookHeader = "# Databricks notebook source"

// requirementsFile holds the notebooks' pinned dependencies (docs/STAGES.md).
const requirementsFile = "notebooks/requirements.txt"

// maxImportBytes is the workspace import limit per file.
const maxImportBytes = 10 << 20

// codeFile is one file of a code bundle.
type codeFile struct {
	// Rel is the slash-separated path below the project root.
	Rel      string
	Notebook bool
	Content  []byte
}

// codeBundle is the code a set of notebooks needs: the directory tree of
// each notebook (its Python package with it), tests and caches left out,
// plus notebooks/requirements.txt. Hash addresses it by content.
type codeBundle struct {
	Hash  string
	Files []codeFile
}

// skipDirs are directory names never uploaded: tests, caches, local
// MLflow stores, virtual environments.
var skipDirs = []string{"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".ipynb_checkpoints",
	"tests", "test", "mlruns", "mlartifacts", ".venv", "venv", "node_modules", ".pipectl"}

func skipFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, ".pyo") ||
		(strings.HasPrefix(name, "test_") && strings.HasSuffix(name, ".py")) || strings.HasSuffix(name, "_test.py") ||
		name == "conftest.py" || name == "mlflow.db"
}

func skipDir(name string) bool {
	return strings.HasPrefix(name, ".") || slices.Contains(skipDirs, name) || strings.HasSuffix(name, ".egg-info")
}

// collectCode builds the bundle for notebooks (paths relative to root).
// In a git work tree only files git tracks or would track are taken, so
// ignored debris never reaches the workspace.
func collectCode(ctx context.Context, root string, notebooks []string) (*codeBundle, error) {
	dirs := map[string]bool{}
	for _, nb := range notebooks {
		if err := checkNotebook(root, nb); err != nil {
			return nil, err
		}
		dirs[path.Dir(filepath.ToSlash(nb))] = true
	}
	allowed := gitFiles(ctx, root)
	// The project's package ships as a wheel (wheel.go), not as files next
	// to the notebooks: a copy there would shadow the installed wheel.
	_, _, pkgDir, hasPkg, err := projectPackage(root)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []codeFile
	add := func(rel string) error {
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		if allowed != nil && !allowed[rel] {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if len(b) > maxImportBytes {
			return fmt.Errorf("%s is %d bytes; the workspace imports files up to 10 MB: keep data out of the notebooks' directory", rel, len(b))
		}
		files = append(files, codeFile{Rel: rel, Content: b,
			Notebook: strings.HasSuffix(rel, ".py") && bytes.HasPrefix(b, []byte(notebookHeader))})
		return nil
	}
	for _, dir := range slices.Sorted(func(yield func(string) bool) {
		for d := range dirs {
			if !yield(d) {
				return
			}
		}
	}) {
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != filepath.Join(root, filepath.FromSlash(dir)) && skipDir(d.Name()) {
					return filepath.SkipDir
				}
				if hasPkg && p == filepath.Join(root, filepath.FromSlash(pkgDir)) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || skipFile(d.Name()) {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			return add(filepath.ToSlash(rel))
		})
		if err != nil {
			return nil, fmt.Errorf("collect notebooks: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, requirementsFile)); err == nil {
		if err := add(requirementsFile); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(files, func(a, b codeFile) int { return strings.Compare(a.Rel, b.Rel) })
	h := sha256.New()
	fmt.Fprintln(h, "pipectl-code-v1")
	for _, f := range files {
		sum := sha256.Sum256(f.Content)
		fmt.Fprintf(h, "%s\x00%t\x00%x\n", f.Rel, f.Notebook, sum)
	}
	return &codeBundle{Hash: hex.EncodeToString(h.Sum(nil)), Files: files}, nil
}

// gitFiles returns the files git tracks or would track (not ignored) in
// root, or nil when root is not a git work tree.
func gitFiles(ctx context.Context, root string) map[string]bool {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return nil
	}
	// Paths are relative to -C, the project root.
	files := map[string]bool{}
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files[f] = true
		}
	}
	return files
}

// codeFolder is the content-addressed folder of a bundle (API path).
func codeFolder(workspaceRoot, hash string) (string, error) {
	root, err := workspaceFolder(workspaceRoot)
	if err != nil {
		return "", err
	}
	return path.Join(root, ".pipectl", "code", hash[:20]), nil
}

// markerName is written last into a code folder: a folder without it is an
// interrupted upload, which the next upload completes.
const markerName = ".pipectl-code.json"

// uploads makes concurrent uploads of one bundle in one process share the
// work (parallel train stages all need the same code).
type uploads struct {
	mu       sync.Mutex
	inflight map[string]*upload
}

type upload struct {
	done chan struct{}
	err  error
}

// ensureCode imports the bundle into its folder unless it is there
// already, and returns the folder (API path) and whether it uploaded.
func (u *uploads) ensureCode(ctx context.Context, c *Client, workspaceRoot string, b *codeBundle) (string, bool, error) {
	folder, err := codeFolder(workspaceRoot, b.Hash)
	if err != nil {
		return "", false, err
	}
	u.mu.Lock()
	if u.inflight == nil {
		u.inflight = map[string]*upload{}
	}
	if up, ok := u.inflight[folder]; ok {
		u.mu.Unlock()
		select {
		case <-up.done:
			return folder, false, up.err
		case <-ctx.Done():
			return folder, false, ctx.Err()
		}
	}
	up := &upload{done: make(chan struct{})}
	u.inflight[folder] = up
	u.mu.Unlock()

	uploaded, err := importCode(ctx, c, folder, b)
	up.err = err
	close(up.done)
	if err != nil {
		u.mu.Lock()
		delete(u.inflight, folder) // let a later attempt try again
		u.mu.Unlock()
	}
	return folder, uploaded, err
}

// codeExists reports whether folder holds a complete upload.
func codeExists(ctx context.Context, c *Client, folder string) (bool, error) {
	_, err := c.W.Workspace.GetStatus(ctx, workspace.GetStatusRequest{Path: folder + "/" + markerName})
	if err == nil {
		return true, nil
	}
	if errors.Is(err, apierr.ErrNotFound) {
		return false, nil
	}
	return false, c.fail(fmt.Sprintf("look for imported code in %s", folder), err)
}

// codeDirs returns the folders the bundle's files go to, refusing any file
// that would land outside folder.
func codeDirs(folder string, b *codeBundle) (map[string]bool, error) {
	dirs := map[string]bool{folder: true}
	for _, f := range b.Files {
		p, err := inside(folder, f.Rel)
		if err != nil {
			return nil, err
		}
		dirs[path.Dir(p)] = true
	}
	return dirs, nil
}

func importCode(ctx context.Context, c *Client, folder string, b *codeBundle) (bool, error) {
	exists, err := codeExists(ctx, c, folder)
	if err != nil || exists {
		return false, err
	}
	dirs, err := codeDirs(folder, b)
	if err != nil {
		return false, err
	}
	// Mkdirs creates parents: the deepest folders are enough.
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for d := range dirs {
			if !yield(d) {
				return
			}
		}
	}) {
		deeper := false
		for o := range dirs {
			if strings.HasPrefix(o, d+"/") {
				deeper = true
				break
			}
		}
		if deeper {
			continue
		}
		if err := c.W.Workspace.Mkdirs(ctx, workspace.Mkdirs{Path: d}); err != nil {
			return false, c.fail(fmt.Sprintf("create workspace folder %s", d), err)
		}
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, f := range b.Files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			req := workspace.Import{Path: folder + "/" + f.Rel, Content: base64.StdEncoding.EncodeToString(f.Content),
				Format: workspace.ImportFormatAuto, Overwrite: true}
			if f.Notebook {
				req.Path = strings.TrimSuffix(req.Path, ".py")
				req.Format, req.Language = workspace.ImportFormatSource, workspace.LanguagePython
			}
			if err := c.W.Workspace.Import(ctx, req); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = c.fail(fmt.Sprintf("import %s", f.Rel), err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return false, firstErr
	}
	manifest := map[string]any{"hash": b.Hash, "files": len(b.Files)}
	mb, _ := json.Marshal(manifest)
	err = c.W.Workspace.Import(ctx, workspace.Import{Path: folder + "/" + markerName, Content: base64.StdEncoding.EncodeToString(mb),
		Format: workspace.ImportFormatAuto, Overwrite: true})
	if err != nil {
		return false, c.fail(fmt.Sprintf("import %s", markerName), err)
	}
	return true, nil
}

// notebookPath is where a notebook lives in a code folder (API path,
// without .py: the workspace strips it from notebooks).
func notebookPath(folder, rel string) (string, error) {
	return inside(folder, strings.TrimSuffix(filepath.ToSlash(rel), ".py"))
}

// readRequirements returns the requirement lines of
// notebooks/requirements.txt (none when it does not exist).
func readRequirements(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, requirementsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "-") {
			return nil, fmt.Errorf("%s: %q: options and includes cannot be installed on Databricks; list pinned packages only", requirementsFile, line)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
