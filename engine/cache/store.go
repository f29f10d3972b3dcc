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

// Last returns the latest entry recorded for a stage of a pipeline on a
// target (see SetLast), or nil.
func (s *Store) Last(pipeline, target, stage string) (*Entry, error) {
	idx, err := s.lastIndex(pipeline, target)
	if err != nil || idx[stage] == "" {
		return nil, err
	}
	return s.Get(idx[stage])
}

// Put records an entry under its key.
func (s *Store) Put(e *Entry) error {
	if !keyRE.MatchString(e.Key) {
		return fmt.Errorf("invalid cache key %q", e.Key)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(s.Dir, "entries", e.Key+".json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	// Not synced: losing an entry in a crash only costs a rerun, and
	// readEntry treats a damaged entry as a miss.
	return atomicfile.WriteFileNoSync(p, append(b, '\n'), 0o600)
}

// SetLast records the keys that stages of a pipeline on a target produced
// last, merged into what was recorded before. Runs of one pipeline on one
// target hold a lock, so read-modify-write is safe here.
func (s *Store) SetLast(pipeline, target string, keys map[string]string) error {
	if len(keys) == 0 {
		return nil
	}
	idx, err := s.lastIndex(pipeline, target)
	if err != nil {
		return err
	}
	if idx == nil {
		idx = map[string]string{}
	}
	for stage, key := range keys {
		if !keyRE.MatchString(key) {
			return fmt.Errorf("invalid cache key %q", key)
		}
		idx[stage] = key
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	p, _ := s.lastPath(pipeline, target)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFileNoSync(p, append(b, '\n'), 0o600)
}

func (s *Store) lastIndex(pipeline, target string) (map[string]string, error) {
	p, err := s.lastPath(pipeline, target)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var idx map[string]string
	if json.Unmarshal(b, &idx) != nil {
		return nil, nil
	}
	return idx, nil
}

func (s *Store) lastPath(pipeline, target string) (string, error) {
	for _, n := range []string{pipeline, target} {
		if !nameRE.MatchString(n) {
			return "", fmt.Errorf("cache: unsafe name %q", n)
		}
	}
	return filepath.Join(s.Dir, "last", pipeline+"@"+target+".json"), nil
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
