package record

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pipectl/pipectl/engine/secret"
	"github.com/pipectl/pipectl/internal/atomicfile"
)

// Store is the runs directory, .pipectl/runs.
type Store struct {
	Dir string
	// Sequential replaces the random part of new run ids by a counter, so
	// that ids are reproducible under a frozen clock (tests only).
	Sequential bool
}

// DirIn is the runs directory of a pipectl state directory (.pipectl/runs).
func DirIn(stateDir string) string { return filepath.Join(stateDir, "runs") }

// ErrNotFound is returned for a run id that names no run.
var ErrNotFound = errors.New("no such run")

// idRE is the shape of run ids: UTC start time to the millisecond, then 4
// characters that keep ids unique within a millisecond.
var idRE = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{4}$`)

// ValidID reports whether id has the shape of a run id (and so is safe as
// a directory name).
func ValidID(id string) bool { return idRE.MatchString(id) }

// NewID returns a run id for a run starting at now: sortable by time.
func NewID(now time.Time, suffix string) string {
	now = now.UTC()
	return fmt.Sprintf("%s-%03d-%s", now.Format("20060102-150405"), now.Nanosecond()/1e6, suffix)
}

// Create gives r a new id, creates its directory and writes run.json. The
// directory appears whole: it is built under a hidden name and renamed, so
// a reader never finds a run without its run.json.
func (s *Store) Create(r *Run, now time.Time) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.Dir, ".new-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone after the rename; cleans up on failure
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, "logs"), 0o700); err != nil {
		return err
	}
	r.Schema = SchemaVersion
	for try := 0; try < 100; try++ {
		suffix, err := s.suffix(try)
		if err != nil {
			return err
		}
		id := NewID(now, suffix)
		if _, err := os.Stat(filepath.Join(s.Dir, id)); err == nil {
			continue
		}
		r.ID = id
		b, err := Marshal(r)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(tmp, "run.json"), b, 0o600); err != nil {
			return err
		}
		// rename(2) refuses a non-empty target: a run created meanwhile
		// under the same id is never replaced.
		if err := os.Rename(tmp, filepath.Join(s.Dir, id)); err != nil {
			if _, statErr := os.Stat(filepath.Join(s.Dir, id)); statErr == nil {
				continue
			}
			return err
		}
		return atomicfile.SyncDir(s.Dir)
	}
	r.ID = ""
	return fmt.Errorf("cannot find a free run id in %s", s.Dir)
}

func (s *Store) suffix(try int) (string, error) {
	if s.Sequential {
		ids, _ := s.IDs()
		return fmt.Sprintf("%04x", len(ids)+1+try), nil
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Path returns the directory of run id.
func (s *Store) Path(id string) string { return filepath.Join(s.Dir, id) }

// Save replaces run.json atomically.
func (s *Store) Save(r *Run) error {
	b, err := Marshal(r)
	if err != nil {
		return err
	}
	return s.SaveBytes(r.ID, b)
}

// Marshal renders r as run.json. Parameters that look like credentials
// are masked (engine/secret): run records never hold them.
func Marshal(r *Run) ([]byte, error) {
	masked := *r
	if len(r.Stages) > 0 {
		masked.Stages = make(map[string]*Stage, len(r.Stages))
		for name, st := range r.Stages {
			if st != nil && len(st.Params) > 0 {
				c := *st
				c.Params = secret.Params(st.Params)
				st = &c
			}
			masked.Stages[name] = st
		}
	}
	b, err := json.MarshalIndent(&masked, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SaveBytes writes an already marshalled run.json of run id.
func (s *Store) SaveBytes(id string, b []byte) error {
	if !ValidID(id) {
		return fmt.Errorf("invalid run id %q", id)
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, id, "run.json"), b, 0o600)
}

// Load reads run id.
func (s *Store) Load(id string) (*Run, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w %q: run ids look like 20260102-030405-000-1a2b", ErrNotFound, id)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, id, "run.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w %s (see pipectl runs)", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("run %s: run.json: %w", id, err)
	}
	if r.Stages == nil {
		r.Stages = map[string]*Stage{}
	}
	return &r, nil
}

// IDs returns every run id, oldest first.
func (s *Store) IDs() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// List returns every readable run, oldest first. A directory without a
// run.json yet (a run being created) is left out; an unreadable record is
// reported in errs and skipped.
func (s *Store) List() (runs []*Run, errs []error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, []error{err}
	}
	for _, id := range ids {
		r, err := s.Load(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		runs = append(runs, r)
	}
	return runs, errs
}

// Resolve turns what a user typed into a run id: a full id, "latest" (the
// newest run, of pipeline when given), or a unique prefix.
func (s *Store) Resolve(ref, pipeline string) (string, error) {
	ids, err := s.IDs()
	if err != nil {
		return "", err
	}
	if ref == "latest" || ref == "last" {
		for i := len(ids) - 1; i >= 0; i-- {
			if pipeline == "" {
				return ids[i], nil
			}
			if r, err := s.Load(ids[i]); err == nil && r.Pipeline == pipeline {
				return ids[i], nil
			}
		}
		if pipeline != "" {
			return "", fmt.Errorf("%w: pipeline %s has no runs yet", ErrNotFound, pipeline)
		}
		return "", fmt.Errorf("%w: there are no runs yet", ErrNotFound)
	}
	var matches []string
	for _, id := range ids {
		if id == ref {
			return id, nil
		}
		if ref != "" && strings.HasPrefix(id, ref) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w %q (see pipectl runs)", ErrNotFound, ref)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("run id %q is ambiguous: %s", ref, strings.Join(matches, ", "))
}
