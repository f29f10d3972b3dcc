package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/pipectl/pipectl/engine/executor"
	"github.com/pipectl/pipectl/internal/atomicfile"
)

// Entry is what a key produced.
type Entry struct {
	Key        string             `json:"key"`
	Components Components         `json:"components"`
	Outputs    map[string]string  `json:"outputs"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
	Links      []executor.Link    `json:"links,omitempty"`
	// Where it came from.
	Pipeline  string    `json:"pipeline"`
	Target    string    `json:"target"`
	Stage     string    `json:"stage"`
	RunID     string    `json:"run_id"`
	CreatedAt time.Time `json:"created_at"`
}

// Store is the cache index in a directory (.pipectl/cache).
type Store struct {
	Dir string
}

var (
	keyRE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$`)
)

// Get returns the entry for key, or nil when there is none.
func (s *Store) Get(key string) (*Entry, error) {
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("invalid cache key %q", key)
	}
	return readEntry(filepath.Join(s.Dir, "entries", key+".json"))
}

// Last returns the latest entry written for a stage of a pipeline on a
// target, or nil.
func (s *Store) Last(pipeline, target, stage string) (*Entry, error) {
	p, err := s.lastPath(pipeline, target, stage)
	if err != nil {
		return nil, err
	}
	return readEntry(p)
}

// Put records an entry under its key and as its stage's latest.
func (s *Store) Put(e *Entry) error {
	if !keyRE.MatchString(e.Key) {
		return fmt.Errorf("invalid cache key %q", e.Key)
	}
	last, err := s.lastPath(e.Pipeline, e.Target, e.Stage)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	for _, p := range []string{filepath.Join(s.Dir, "entries", e.Key+".json"), last} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(p, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) lastPath(pipeline, target, stage string) (string, error) {
	for _, n := range []string{pipeline, target, stage} {
		if !nameRE.MatchString(n) {
			return "", fmt.Errorf("cache: unsafe name %q", n)
		}
	}
	return filepath.Join(s.Dir, "last", pipeline, target, stage+".json"), nil
}

func readEntry(p string) (*Entry, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		// Entries are written atomically, so this is damage from outside;
		// a damaged entry is a miss, not a failure.
		return nil, nil
	}
	return &e, nil
}
