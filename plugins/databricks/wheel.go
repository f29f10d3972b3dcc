package databricks

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/service/files"
	toml "github.com/pelletier/go-toml/v2"
)

// pyprojectFile describes the notebooks' Python package: [project] name
// and version. The package is the directory notebooks/<name> (name with
// '-' as '_'); pipectl builds it as a wheel that every Databricks task
// installs, so notebooks import it from the wheel, never from their folder.
const pyprojectFile = "notebooks/pyproject.toml"

// wheel is a built PEP 427 wheel: the same sources give the same bytes.
type wheel struct {
	// Package is the import name (the directory below notebooks/).
	Package string
	// File is the wheel's file name, e.g. sentiment-0.1.0-py3-none-any.whl.
	File  string
	Bytes []byte
	// Hash is the SHA-256 of Bytes (hex): it addresses the upload.
	Hash string
}

// wheelEpoch is every file's timestamp in the archive (zip cannot store
// dates before 1980): fixed, so the bytes depend on content alone.
var wheelEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

var distName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
var distVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$`)

// projectPackage reads notebooks/pyproject.toml and returns the project's
// name, version and package directory (slash path below root), or ok false
// when the project has no package to ship (no pyproject.toml, or no
// directory of that name).
func projectPackage(root string) (name, version, dir string, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(root, pyprojectFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", "", false, nil
	}
	if err != nil {
		return "", "", "", false, err
	}
	var doc struct {
		Project struct {
			Name    string `toml:"name"`
			Version string `toml:"version"`
		} `toml:"project"`
	}
	if err := toml.Unmarshal(b, &doc); err != nil {
		return "", "", "", false, fmt.Errorf("%s: %v", pyprojectFile, err)
	}
	name, version = doc.Project.Name, doc.Project.Version
	if name == "" {
		return "", "", "", false, nil
	}
	if !distName.MatchString(name) {
		return "", "", "", false, fmt.Errorf("%s: project name %q is not a valid Python distribution name", pyprojectFile, name)
	}
	if !distVersion.MatchString(version) {
		return "", "", "", false, fmt.Errorf("%s: project version %q: use a plain release version such as 0.1.0", pyprojectFile, version)
	}
	pkg := strings.ReplaceAll(strings.ReplaceAll(strings.ToLower(name), "-", "_"), ".", "_")
	dir = path.Join(path.Dir(pyprojectFile), pkg)
	if st, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir), "__init__.py")); err != nil || st.IsDir() {
		return "", "", "", false, nil
	}
	return name, version, dir, true, nil
}

// buildWheel builds the project's package as a pure-Python wheel (nil when
// the project has none). Files are those collectCode would upload (git's
// view, tests and caches left out), in sorted order with fixed timestamps
// and modes; RECORD lists each with its SHA-256 and size.
func buildWheel(ctx context.Context, root string) (*wheel, error) {
	name, version, dir, ok, err := projectPackage(root)
	if err != nil || !ok {
		return nil, err
	}
	pkg := path.Base(dir)
	allowed := gitFiles(ctx, root)
	var rels []string
	err = filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != filepath.Join(root, filepath.FromSlash(dir)) && skipDir(d.Name()) {
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
		rel = filepath.ToSlash(rel)
		if allowed == nil || allowed[rel] {
			rels = append(rels, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build the %s wheel: %w", name, err)
	}
	slices.Sort(rels)

	dist := strings.ReplaceAll(strings.ReplaceAll(name, "-", "_"), ".", "_")
	info := dist + "-" + version + ".dist-info"
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	for _, rel := range rels {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{pkg + "/" + strings.TrimPrefix(rel, dir+"/"), b})
	}
	entries = append(entries,
		entry{info + "/METADATA", []byte(fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nRequires-Python: >=3.10\n", name, version))},
		entry{info + "/WHEEL", []byte("Wheel-Version: 1.0\nGenerator: pipectl\nRoot-Is-Purelib: true\nTag: py3-none-any\n")},
		entry{info + "/top_level.txt", []byte(pkg + "\n")},
	)
	var record strings.Builder
	for _, e := range entries {
		sum := sha256.Sum256(e.data)
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", e.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(e.data))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	entries = append(entries, entry{info + "/RECORD", []byte(record.String())})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: wheelEpoch}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(buf.Bytes())
	return &wheel{Package: pkg, File: fmt.Sprintf("%s-%s-py3-none-any.whl", dist, version), Bytes: buf.Bytes(),
		Hash: hex.EncodeToString(sum[:])}, nil
}

// wheelPath is where a wheel lives in the target's Volume: addressed by
// its content, so a changed package is a new file and an unchanged one is
// uploaded once.
func wheelPath(cfg *Config, w *wheel) string {
	return cfg.VolumeRoot() + "/.pipectl/wheels/" + w.Hash[:20] + "/" + w.File
}

// wheelExists reports whether the wheel is in the Volume already.
func wheelExists(ctx context.Context, c *Client, p string) (bool, error) {
	_, err := c.W.Files.GetMetadata(ctx, files.GetMetadataRequest{FilePath: p})
	if err == nil {
		return true, nil
	}
	if errors.Is(err, apierr.ErrNotFound) {
		return false, nil
	}
	return false, c.fail("look for the wheel "+p, err)
}

// ensureWheel uploads the wheel unless it is there, and reports whether it
// uploaded. Concurrent stages of one process share one upload.
func (u *uploads) ensureWheel(ctx context.Context, c *Client, p string, w *wheel) (bool, error) {
	u.mu.Lock()
	if u.inflight == nil {
		u.inflight = map[string]*upload{}
	}
	if up, ok := u.inflight[p]; ok {
		u.mu.Unlock()
		select {
		case <-up.done:
			return false, up.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	up := &upload{done: make(chan struct{})}
	u.inflight[p] = up
	u.mu.Unlock()

	uploaded, err := uploadWheel(ctx, c, p, w)
	up.err = err
	close(up.done)
	if err != nil {
		u.mu.Lock()
		delete(u.inflight, p)
		u.mu.Unlock()
	}
	return uploaded, err
}

func uploadWheel(ctx context.Context, c *Client, p string, w *wheel) (bool, error) {
	exists, err := wheelExists(ctx, c, p)
	if err != nil || exists {
		return false, err
	}
	err = c.W.Files.Upload(ctx, files.UploadRequest{FilePath: p, Contents: io.NopCloser(bytes.NewReader(w.Bytes)), Overwrite: true})
	if err != nil {
		return false, c.fail(fmt.Sprintf("upload the wheel to %s (does the volume %s exist?)", p, path.Dir(path.Dir(path.Dir(path.Dir(p))))), err)
	}
	return true, nil
}

// WheelOutcome says where the project's wheel is and whether this call
// uploaded it (Present: it was there already; dry runs only look).
type WheelOutcome struct {
	File, Path string
	Bytes      int
	Uploaded   bool
	Present    bool
}

// libraries returns what every task installs: the pinned requirements and
// the project's wheel (uploaded unless dry; its Volume path), and where
// the wheel is (zero when the project has none).
func libraries(ctx context.Context, c *Client, cfg *Config, root string, u *uploads, dry bool, emit func(string)) ([]string, WheelOutcome, error) {
	var out WheelOutcome
	reqs, err := readRequirements(root)
	if err != nil {
		return nil, out, err
	}
	w, err := buildWheel(ctx, root)
	if err != nil || w == nil {
		return reqs, out, err
	}
	p := wheelPath(cfg, w)
	out = WheelOutcome{File: w.File, Path: p, Bytes: len(w.Bytes)}
	if dry {
		if out.Present, err = wheelExists(ctx, c, p); err != nil {
			return nil, out, err
		}
	} else {
		if out.Uploaded, err = u.ensureWheel(ctx, c, p, w); err != nil {
			return nil, out, err
		}
		out.Present = !out.Uploaded
		if out.Uploaded && emit != nil {
			emit(fmt.Sprintf("databricks: uploaded %s (%d bytes) to %s", w.File, len(w.Bytes), path.Dir(p)))
		}
	}
	return append(slices.Clone(reqs), p), out, nil
}
