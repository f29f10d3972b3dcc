package plugin

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/pipectl/pipectl/engine/executor"
)

// BinaryPrefix starts the file name of every third-party executor:
// pipectl-executor-<name>.
const BinaryPrefix = "pipectl-executor-"

// ChecksumsFile, in a plugin directory, pins the SHA-256 of the executors
// in it (the output of `sha256sum pipectl-executor-* > SHA256SUMS`). When
// it exists, every executor in that directory must be listed and match.
const ChecksumsFile = "SHA256SUMS"

// Origin says where a third-party executor was found.
type Origin string

const (
	// OriginProject is <project>/.pipectl/plugins.
	OriginProject Origin = "project"
	// OriginUser is ~/.pipectl/plugins.
	OriginUser Origin = "user"
	// OriginPath is a directory of $PATH.
	OriginPath Origin = "PATH"
)

// Candidate is a file that looks like an executor plugin.
type Candidate struct {
	// Name is the executor name: the file name without BinaryPrefix.
	Name   string
	Path   string
	Origin Origin
	// Checksum is the pinned SHA-256 from the directory's SHA256SUMS.
	Checksum []byte
	// Overrides is set when the candidate replaces a built-in executor of
	// the same name.
	Overrides bool
	// Problem and Reason say why the candidate is ignored; Problem is empty
	// for a usable candidate.
	Problem Problem
	Reason  string
}

// Usable reports whether the candidate is not ignored.
func (c Candidate) Usable() bool { return c.Problem == "" }

// DiscoverOptions says where to look.
type DiscoverOptions struct {
	// ProjectRoot and Home locate the two plugin directories
	// (<root>/.pipectl/plugins, <home>/.pipectl/plugins); either may be
	// empty.
	ProjectRoot string
	Home        string
	// PATH is the search path (the value of $PATH).
	PATH string
	// Builtins are the names of the built-in executors.
	Builtins []string
}

// PluginDir returns the plugin directory under root (a project root or a
// home directory).
func PluginDir(root string) string { return filepath.Join(root, ".pipectl", "plugins") }

var executorNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Discover lists every file named pipectl-executor-* in the project's
// plugin directory, the user's, then each directory of PATH, in that
// order, without running any of them. The first usable candidate of a name
// wins; later ones are listed as duplicates. A candidate from a plugin
// directory with a built-in's name overrides the built-in (Packer's rule:
// installing a plugin is explicit); one found only on PATH does not, so
// that a stray binary cannot replace a built-in by accident.
func Discover(opts DiscoverOptions) []Candidate {
	var out []Candidate
	seen := map[string]string{}
	visit := func(dir string, origin Origin) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return // a missing directory is normal
		}
		var sums map[string][]byte
		var sumsErr error
		if origin != OriginPath {
			sums, sumsErr = readChecksums(filepath.Join(dir, ChecksumsFile))
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
			if !ok || e.IsDir() {
				continue
			}
			c := Candidate{Name: name, Path: filepath.Join(dir, e.Name()), Origin: origin}
			out = append(out, check(c, seen, sums, sumsErr, opts.Builtins))
		}
	}
	if opts.ProjectRoot != "" {
		visit(PluginDir(opts.ProjectRoot), OriginProject)
	}
	if opts.Home != "" && PluginDir(opts.Home) != PluginDir(opts.ProjectRoot) {
		visit(PluginDir(opts.Home), OriginUser)
	}
	for _, dir := range filepath.SplitList(opts.PATH) {
		// Relative PATH entries (".", "") would make discovery depend on
		// the working directory; exec.LookPath refuses them too.
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		visit(dir, OriginPath)
	}
	return out
}

// check decides whether c is usable, recording its name in seen when it
// is.
func check(c Candidate, seen map[string]string, sums map[string][]byte, sumsErr error, builtins []string) Candidate {
	ignore := func(p Problem, format string, args ...any) Candidate {
		c.Problem, c.Reason = p, fmt.Sprintf(format, args...)
		return c
	}
	if !executorNameRE.MatchString(c.Name) {
		return ignore(ProblemInvalidName, "%q is not an executor name: use lower-case letters, digits, '-' and '_'", c.Name)
	}
	fi, err := os.Stat(c.Path) // follows symlinks
	switch {
	case err != nil:
		return ignore(ProblemNotExecutable, "%v", err)
	case !fi.Mode().IsRegular():
		return ignore(ProblemNotExecutable, "not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return ignore(ProblemNotExecutable, "its mode is %s; run chmod +x %s", fi.Mode().Perm(), c.Path)
	}
	if first, dup := seen[c.Name]; dup {
		return ignore(ProblemDuplicate, "%s comes first in the search order", first)
	}
	if slices.Contains(builtins, c.Name) {
		if c.Origin == OriginPath {
			return ignore(ProblemShadowsBuiltin, "%q is a built-in executor; to replace it, install the binary in a .pipectl/plugins directory", c.Name)
		}
		c.Overrides = true
	}
	if sumsErr != nil {
		return ignore(ProblemChecksumsFile, "%v", sumsErr)
	}
	if sums != nil {
		sum, ok := sums[filepath.Base(c.Path)]
		if !ok {
			return ignore(ProblemNotListedInSums, "%s pins the executors of this directory and does not list %s", ChecksumsFile, filepath.Base(c.Path))
		}
		c.Checksum = sum
	}
	seen[c.Name] = c.Path
	return c
}

// readChecksums parses a sha256sum file; a missing file is nil, nil.
func readChecksums(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	sums := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hexSum, file, ok := strings.Cut(line, " ")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != 32 {
			return nil, fmt.Errorf("%s:%d: want \"<sha256 hex>  <file name>\" (the output of sha256sum)", path, n)
		}
		sums[strings.TrimPrefix(strings.TrimSpace(file), "*")] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sums, nil
}

// Inspect starts a candidate, asks it to describe itself and stops it.
// The error is a *StartError when the plugin could not be started.
func Inspect(ctx context.Context, cfg Config) (executor.Info, error) {
	c, err := Start(ctx, cfg)
	if err != nil {
		return executor.Info{}, err
	}
	defer c.Close()
	return c.Info(), nil
}
